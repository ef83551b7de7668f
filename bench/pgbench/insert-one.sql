-- The single-row insert POST /jobs makes (JobRepo.insertOne), without the HTTP and validation around it.
INSERT INTO jobs AS j (id, queue, kind, payload, priority, max_attempts, run_at, idempotency_key, request_hash, trace_context)
VALUES (jobq_uuidv7(), 'default', 'noop', '{}'::jsonb, 0, 5, now(), NULL, NULL, NULL)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING j.id, j.queue, j.kind, j.payload, j.status, j.priority, j.attempts, j.max_attempts, j.run_at, j.created_at;
