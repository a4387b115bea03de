/**
 * etcd auth for the cluster tests that need a host's etcd user to be
 * refused something: auth turned on with a root user and one limited
 * user. Auth stays on for the life of that etcd, so such a test starts an
 * etcd of its own.
 */
import { Etcd3 } from "etcd3";

import { openEtcd } from "../../src/cluster/etcd.js";

/** Every test user's password. */
export const PASSWORD = "lorne-test";

/** What the limited user may do: read or write a key prefix. */
export interface Grant {
  permission: "Read" | "Write" | "Readwrite";
  prefix: string;
}

/**
 * Turns auth on, with a user `name` (role of the same name) allowed
 * `grants` and nothing else; returns a client signed in as root.
 */
export async function enableAuth(
  endpoints: string[],
  name: string,
  grants: Grant[],
): Promise<Etcd3> {
  const open = openEtcd({ endpoints });
  try {
    await open.user("root").create(PASSWORD);
    await open.role("root").create();
    await open.user("root").addRole("root");
    const role = await open.role(name).create();
    for (const grant of grants) await role.grant(permission(open, grant));
    await (await open.user(name).create(PASSWORD)).addRole(role);
    await open.auth.authEnable();
  } finally {
    open.close();
  }
  return signIn(endpoints, "root");
}

/** A client signed in as `name`. */
export function signIn(endpoints: string[], name: string): Etcd3 {
  return new Etcd3({
    hosts: endpoints,
    auth: { username: name, password: PASSWORD },
  });
}

/** Takes a grant back from the role `name`. */
export async function revokeGrant(
  root: Etcd3,
  name: string,
  grant: Grant,
): Promise<void> {
  await root.role(name).revoke(permission(root, grant));
}

function permission(client: Etcd3, grant: Grant) {
  return {
    permission: grant.permission,
    range: client.range({ prefix: grant.prefix }),
  };
}
