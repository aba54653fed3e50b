/** How the security files judge an answer of the API, whatever the request was. */
import type { Response } from 'supertest';

/** Nothing is a 5xx, and every 4xx is a problem document carrying the request's correlation id. */
export function expectCleanAnswer(res: Response): void {
  expect(res.status).toBeLessThan(500);
  if (res.status < 400) return;
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toEqual(
    expect.objectContaining({
      type: expect.stringMatching(/^\/problems\//),
      title: expect.any(String),
      status: res.status,
      detail: expect.any(String),
      correlation_id: res.headers['x-correlation-id'],
    }),
  );
}

/** Status and, for a problem, its detail: a failed comparison then says why the API answered so. */
export const outcome = (res: Response) => ({
  status: res.status,
  detail: res.status >= 400 ? res.body.detail : undefined,
});

/** What two answers to the same request share: all but a problem's correlation id. */
export const comparable = (res: Response): unknown => [
  res.status,
  res.status >= 400 ? { ...res.body, correlation_id: undefined } : res.body,
];
