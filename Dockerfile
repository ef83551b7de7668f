# syntax=docker/dockerfile:1
#
# One image for the three programs; the command picks which one runs:
#   docker run --env DATABASE_URL=... -p 8080:8080 effect-pg-queue          # API on 8080 (the default CMD)
#   docker run --env DATABASE_URL=... effect-pg-queue bun run src/worker.ts  # worker, /metrics + /health on 9091
#   docker run --env DATABASE_URL=... effect-pg-queue bun run src/migrate.ts # apply migrations, exit
# docker-compose.yml runs all three against a Postgres; docs/runbook.md covers deploying it.

ARG BUN_VERSION=1.4.4
ARG NODE_VERSION=22

# --- Stage 1: production dependencies, exactly as locked ----------------------------------------------
# The lockfile we commit is npm's package-lock.json (npm users install this package; CI runs `npm ci`), and
# `bun install --production --frozen-lockfile` wants a bun.lock. So a throw-away Node stage runs `npm ci
# --omit=dev`, the one command that installs exactly the locked tree or fails, and the runtime stage copies
# its node_modules. The production tree is pure JavaScript (no native addons, no install scripts), so it
# is the same on every platform: this stage runs on the build machine's own platform (fast cross builds).
# (Bun 1.4.4 can also migrate package-lock.json on the fly, and `bun install --production --frozen-lockfile`
# then installs the same package versions; we keep npm as the single authority on the lockfile.)
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# After `npm ci`, two kinds of dead weight go:
# - PGlite (Postgres in WebAssembly, about 20 MB) serves `npm start` without DATABASE_URL; the programs this image
#   runs never import it (test/packaging.test.ts checks every package removed here against their imports);
# - what runs of each package is its compiled dist/ or build/: TypeScript sources, declarations and source maps
#   go (about 75 MB). Nothing resolves into these paths at run time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@electric-sql/pglite \
 && rm -rf node_modules/effect/src node_modules/effect/ai-docs node_modules/@effect/*/src node_modules/@types \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete

# --- Stage 2: the runtime ----------------------------------------------------------------------------------
# Bun runs the TypeScript sources directly: there is no build step, so the image holds src/ as committed.
FROM oven/bun:${BUN_VERSION}-alpine AS runtime
WORKDIR /app
ENV NODE_ENV=production
# JavaScriptCore compiles a function with its top tier (FTL) only after 100 times the usual warm-up: the
# request and job paths stop paying for FTL compiles in their first minutes (a worker's first 20,000 jobs
# took a third less CPU, the API's first 20,000 requests 16% less), hot loops still reach FTL within
# milliseconds. The npm scripts set the same (docs/tradeoffs.md, "JIT tiering").
ENV BUN_JSC_thresholdForFTLOptimizeAfterWarmUp=10000000
# Code and dependencies belong to root and are read-only for the user the programs run as.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY migrations ./migrations
COPY src ./src
# the dashboard the API serves under /ui (prebuilt, committed)
COPY ui/dist ./ui/dist
COPY docker/healthcheck.ts ./docker/healthcheck.ts
# `bun` (uid 1000) is the unprivileged user the official image ships.
USER bun
# 8080: the API (PORT). 9091: the worker's /metrics and /health (WORKER_METRICS_PORT).
EXPOSE 8080 9091
# Probes the program this container runs: the API's /health, or the worker's on 9091; a migrate container
# is always healthy. HEALTHCHECK_URL overrides the choice (see docker/healthcheck.ts).
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 CMD ["bun", "docker/healthcheck.ts"]
# Docker's stop signal is SIGTERM: the API stops accepting and finishes in-flight requests; the worker stops
# claiming and gives running jobs WORKER_SHUTDOWN_GRACE (default 30s) before releasing them. Give the
# container longer than that before SIGKILL (`docker stop -t 45`, compose `stop_grace_period`).
CMD ["bun", "run", "src/api.ts"]
