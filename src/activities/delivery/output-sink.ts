/**
 * A command's output as the platform keeps it: stdout and stderr interleaved in arrival order, the
 * last {@link OUTPUT_LIMIT_BYTES} of it, written to PostgreSQL (`job_output`) about once a second
 * while the command runs, so `GET /api/jobs/:job_id/logs` (served by any API process) grows with it.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { JobOutput } from '../../domain/entities';

/** How much output is kept per job. */
export const OUTPUT_LIMIT_BYTES = 256 * 1024;

/** How often the output is written while a command runs. */
const FLUSH_EVERY_MS = 1000;

/** The output of one job: appended to in memory, written to the database in the background. */
export class OutputSink {
  private chunks: Buffer[] = [];
  private size = 0;
  private total = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly orm: MikroORM,
    private readonly jobId: string,
  ) {}

  /** Opens the job's output, keeping what earlier attempts wrote. */
  static async open(orm: MikroORM, jobId: string): Promise<OutputSink> {
    const sink = new OutputSink(orm, jobId);
    const earlier = await orm.em.fork().findOne(JobOutput, { jobId });
    if (earlier) {
      sink.keep(Buffer.from(earlier.content, 'utf8'));
      sink.total = earlier.totalBytes;
    }
    sink.timer = setInterval(() => sink.flushSoon(), FLUSH_EVERY_MS);
    return sink;
  }

  /** Appends what the command wrote. */
  write(chunk: Buffer): void {
    this.keep(chunk);
    this.total += chunk.length;
    this.dirty = true;
  }

  /** Appends a line of the platform's own (an attempt's start, how it ended). */
  note(line: string): void {
    this.write(Buffer.from(`[idp] ${line}\n`, 'utf8'));
  }

  /** Stops the periodic writes and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.flushSoon();
    await this.writing;
  }

  /** The kept output as text PostgreSQL can store (a NUL byte, which text cannot hold, shown as U+FFFD). */
  text(): string {
    return Buffer.concat(this.chunks)
      .toString('utf8')
      .replace(/\u0000/g, '\uFFFD');
  }

  private keep(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > OUTPUT_LIMIT_BYTES) {
      const first = this.chunks[0]!;
      const over = this.size - OUTPUT_LIMIT_BYTES;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
      }
    }
  }

  private flushSoon(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const content = this.text();
    const totalBytes = this.total;
    // One write at a time, in order; a failed write is retried with the next flush.
    this.writing = this.writing.then(() =>
      this.orm.em
        .fork()
        .upsert(JobOutput, { jobId: this.jobId, content, totalBytes, updatedAt: new Date() })
        .then(
          () => undefined,
          () => {
            this.dirty = true;
          },
        ),
    );
  }
}
