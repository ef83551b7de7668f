/**
 * The HTTP API's metrics. Requests are labelled by route template (`/jobs/:id`, never the raw path), method
 * and status, so label cardinality stays bounded whatever clients send.
 */
import { Metric } from "effect"

export const requests = Metric.counter("jobq_http_requests_total", {
  description: "HTTP requests answered, by route template, method and status",
  incremental: true
})

/** 0.5 ms to 8.192 s, doubling (15 boundaries, then +Inf): the API's database work has an 8 s deadline. */
export const requestSecondsBoundaries = Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 16 })

export const requestSeconds = Metric.histogram("jobq_http_request_duration_seconds", {
  description: "Time to answer an HTTP request, by route template, method and status",
  boundaries: requestSecondsBoundaries
})

export const jobsEnqueued = Metric.counter("jobq_jobs_enqueued_total", {
  description: "Jobs created through the API, by kind (idempotent repeats are not counted)",
  incremental: true
})

export const jobsDuplicate = Metric.counter("jobq_jobs_duplicate_total", {
  description:
    "Enqueues through the API refused as duplicates of a unique job, by kind (the holder answered)",
  incremental: true
})

export const dbConnections = Metric.gauge("jobq_db_connections", {
  description:
    "Server connections of this application_name by state (active, idle, ...), sampled at each scrape"
})

export const dbPoolMax = Metric.gauge("jobq_db_pool_max_connections", {
  description: "Most connections this process's pool opens"
})

export const eventFollowers = Metric.gauge("jobq_event_followers", {
  description: "Clients following GET /events, sampled at each scrape"
})

export const jobWaiters = Metric.gauge("jobq_job_waiters", {
  description:
    "Requests waiting for a job to finish (GET /jobs/{id}/wait, POST /jobs?wait=), sampled at each scrape"
})
