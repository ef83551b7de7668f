import { Context } from "effect"

/**
 * Annotates an endpoint whose body carries jobs: how many containers enclose a job's payload in it (`{
 * "payload": ... }` is 1, `{ "jobs": [{ "payload": ... }] }` is 3), so its depth limit counts from there.
 */
export class PayloadEnclosing extends Context.Service<PayloadEnclosing, number>()(
  "jobq/http/PayloadEnclosing"
) {}
