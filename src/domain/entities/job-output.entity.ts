import { BigIntType, EntitySchema, OptionalProps } from '@mikro-orm/core';

/** The kept output of a job's command (stdout and stderr interleaved, the last 256 KiB). */
export class JobOutput {
  [OptionalProps]?: 'updatedAt';
  jobId!: string;
  content!: string;
  /** Every byte the command wrote, including what no longer fits. */
  totalBytes!: number;
  updatedAt: Date = new Date();
}

export const JobOutputSchema = new EntitySchema<JobOutput>({
  class: JobOutput,
  tableName: 'job_output',
  properties: {
    jobId: { type: 'string', length: 255, primary: true },
    content: { type: 'text' },
    totalBytes: { type: new BigIntType('number') },
    updatedAt: { type: 'datetime', length: 6 },
  },
});
