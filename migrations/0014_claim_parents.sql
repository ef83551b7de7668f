-- A claimed flow job's dependencies' results, by local name, as one function call. Applied once by the
-- migrator inside a transaction; never edited after it lands.
--
-- The claims (JobRepo.claim, JobRepo.claimFromQueues, QueueRepo.claimLimited) return this for flow jobs
-- only (`CASE WHEN flow_id IS NULL THEN NULL ELSE jobq_job_parents(id) END`). Written as a sub-select in the
-- claim, its join of job_deps and jobs was planned with every claim, flow jobs among the claimed or not
-- (a claim is planned afresh on every call: its LIMIT is a parameter, and a generic plan would guess a
-- tenth of the ready jobs; bench/RESULTS.md, "Hot path statements"): about a third of the claim's planning
-- time. A function call is planned as a call; its query is planned when a flow job first needs it in a
-- session, and its plan kept for the session (PL/pgSQL caches it).
CREATE FUNCTION jobq_job_parents(job uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT jsonb_object_agg(p.flow_name, p.result)
          FROM job_deps d JOIN jobs p ON p.id = d.depends_on
          WHERE d.job_id = job);
END
$$;
