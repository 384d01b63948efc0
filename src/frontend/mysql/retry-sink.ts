import type { MysqlResponseSink } from '../../backend/mysql/conn.js';
import type { MysqlPacket } from '../../protocol/mysql/index.js';

/**
 * Server errors that say the connection is going away, not that the statement
 * failed: ER_SERVER_SHUTDOWN (1053, a clean shutdown), ER_CONNECTION_KILLED
 * (1927, MariaDB's KILL CONNECTION), ER_CLIENT_INTERACTION_TIMEOUT (4031, MySQL 8's
 * wait_timeout notice). Also what an idle pooled connection is told just as it is
 * lent: the server's unsolicited ERR then reads as the answer to the next command.
 * ER_QUERY_INTERRUPTED (1317, KILL QUERY) is the statement's own failure: never retried.
 */
const GOING_AWAY = new Set([1053, 1927, 4031]);

/**
 * The sink of a read that may still run again elsewhere (see MysqlSession.run):
 * packets pass straight through, except an answer that is a lone going-away ERR,
 * which is held back (the read then runs on another connection instead).
 */
export class RetrySink implements MysqlResponseSink {
  /** Some packet of the answer went to the client: the read can no longer run again. */
  passed = false;
  /** The answer was a going-away ERR, not forwarded. */
  goingAway = false;

  constructor(private readonly inner: MysqlResponseSink) {}

  packet(p: MysqlPacket): void {
    if (!this.passed && p.head === 0xff && p.payloadLength >= 3 && GOING_AWAY.has(p.payload.readUInt16LE(1))) {
      this.goingAway = true;
      return;
    }
    this.passed = true;
    this.inner.packet(p);
  }

  flush(): boolean {
    return this.passed && this.inner.flush();
  }

  localInfile(): void {
    this.passed = true;
    this.inner.localInfile?.();
  }
}

