/**
 * `lorne/ship`: the log shipper as a library. Load a config with
 * loadShipConfig (or build one with parseShipConfig), then run a Shipper;
 * see docs/ship.md.
 */
export {
  loadShipConfig,
  parseShipConfig,
  type ShipConfig,
  type ShipFileGroup,
  type ShipServer,
} from "./config.js";
export { Shipper, type ShipperOptions } from "./shipper.js";
export { ShipCounters } from "./counters.js";
export {
  metricsRegistry,
  serveStatistics,
  statisticsJson,
  type StatisticsJson,
} from "./stats.js";
export { OffsetStore, type OffsetEntry } from "./offsets.js";
export { FileReader, type ReadLine, type ReadResult } from "./reader.js";
