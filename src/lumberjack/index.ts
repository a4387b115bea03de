/**
 * `lorne/lumberjack`: the Lumberjack wire protocol, versions 1 and 2. Frame
 * encoders and the streaming decoder; see docs/lumberjack.md.
 */
export {
  encodeCompressed,
  encodeCompressedAsync,
  encodeFrame,
  encodeFrames,
  MAX_U32,
  objectToPairs,
  pairsToObject,
  TYPE_BYTE,
  VERSION_BYTE,
  type Frame,
  type Version,
} from "./frames.js";
export { FrameDecoder } from "./decoder.js";
export {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_INFLATED_BYTES,
  DEFAULT_MAX_NESTING,
  DEFAULT_MAX_PAIRS,
  DEFAULT_MAX_WINDOW,
  resolveLimits,
  type DecoderLimits,
  type ResolvedLimits,
} from "./limits.js";
export {
  LumberjackClient,
  type LumberjackClientOptions,
  type LumberjackClientEvents,
} from "./client.js";
export {
  LumberjackReceiver,
  type LumberjackReceiverOptions,
  type ReceiverSettings,
  type ReceiverStats,
  type BatchInfo,
  type BatchHandler,
  type RawBatchHandler,
  type RawEvent,
} from "./receiver.js";
export { checkJsonObject } from "./json-check.js";
export {
  encodeBatch,
  PreparedBatch,
  type BatchEncoding,
  type BatchEvents,
  type EventFrames,
} from "./batch.js";
export type { ClientTlsOptions, ServerTlsOptions, ClientAuth } from "./tls.js";
