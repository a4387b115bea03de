/**
 * The shipper's running totals, for the statistics endpoint and
 * `/metrics`. Lines and bytes count line text without line endings.
 */
export class ShipCounters {
  /** Lines read from files and put in a batch. */
  linesRead = 0;
  /** Bytes of those lines. */
  bytesRead = 0;
  /** Lines handed to a server, each attempt of a retried batch again. */
  linesSent = 0;
  /** Lines a server acked. */
  linesAcked = 0;
  bytesAcked = 0;
  batchesAcked = 0;
  /** Lines of batches that failed and went back for a retry. */
  linesRetried = 0;
  batchesFailed = 0;
  /** Over-long lines skipped. */
  linesSkipped = 0;
}
