import { readFileSync } from 'node:fs';
import {
  Client,
  Connection,
  type ConnectionOptions,
  type Next,
  type WorkflowClientInterceptor,
  type WorkflowSignalInput,
  type WorkflowStartInput,
  type WorkflowStartOutput,
  type WorkflowStartUpdateInput,
  type WorkflowStartUpdateOutput,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../config';
import { CORRELATION_HEADER } from '../workflows/contract';

export interface TemporalConnectionOptions {
  address: string;
  apiKey?: string;
  tls?: ConnectionOptions['tls'];
}

/** Connection options from the config: address, mTLS (certificate, key, CA, server name) or an API key. */
export function connectionOptions(config: Config): TemporalConnectionOptions {
  const address = config.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const mtls = config.TEMPORAL_TLS_CERT_PATH !== undefined;
  const tlsWanted =
    mtls || config.TEMPORAL_TLS_CA_PATH !== undefined || config.TEMPORAL_API_KEY !== undefined;
  return {
    address,
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
    ...(tlsWanted
      ? {
          tls: {
            ...(config.TEMPORAL_TLS_SERVER_NAME
              ? { serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME }
              : {}),
            ...(config.TEMPORAL_TLS_CA_PATH
              ? { serverRootCACertificate: readFileSync(config.TEMPORAL_TLS_CA_PATH) }
              : {}),
            ...(mtls
              ? {
                  clientCertPair: {
                    crt: readFileSync(config.TEMPORAL_TLS_CERT_PATH!),
                    key: readFileSync(config.TEMPORAL_TLS_KEY_PATH!),
                  },
                }
              : {}),
          },
        }
      : {}),
  };
}

/**
 * Adds the caller's correlation id as a header to every start, signal and update, so the workflow
 * (and, through its interceptor, every activity) logs under the same id.
 */
export class CorrelationClientInterceptor implements WorkflowClientInterceptor {
  constructor(private readonly current: () => string | undefined) {}

  private withHeader<T extends { headers: Record<string, unknown> }>(input: T): T {
    const id = this.current();
    if (id === undefined) return input;
    return {
      ...input,
      headers: { ...input.headers, [CORRELATION_HEADER]: defaultPayloadConverter.toPayload(id) },
    };
  }

  async startWithDetails(
    input: WorkflowStartInput,
    next: Next<WorkflowClientInterceptor, 'startWithDetails'>,
  ): Promise<WorkflowStartOutput> {
    return next(this.withHeader(input));
  }

  async signal(input: WorkflowSignalInput, next: Next<WorkflowClientInterceptor, 'signal'>): Promise<void> {
    return next(this.withHeader(input));
  }

  async startUpdate(
    input: WorkflowStartUpdateInput,
    next: Next<WorkflowClientInterceptor, 'startUpdate'>,
  ): Promise<WorkflowStartUpdateOutput> {
    return next(this.withHeader(input));
  }
}

/**
 * Connects lazily to Temporal and returns a client that propagates the correlation id.
 *
 * Tuned for an API that must answer: while Temporal is down, a call gives up after ~3 s of retries
 * (the SDK's default, 10 attempts, keeps a request ~20 s before its 503), and once it is back the
 * channel reconnects within 2 s, inside one call's retries (gRPC's default backoff grows to 2 minutes, so the API would keep
 * answering 503 long after the server returned; the fault suite measured ~20 s).
 */
export async function createTemporalClient(
  config: Config,
  currentCorrelationId: () => string | undefined,
): Promise<Client> {
  const connection = await Connection.connect({
    ...connectionOptions(config),
    connectTimeout: '10s',
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 6 }))],
    channelArgs: { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2000 },
  });
  return new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    interceptors: { workflow: [new CorrelationClientInterceptor(currentCorrelationId)] },
  });
}
