# syntax=docker/dockerfile:1
# The platform's image: one image, three commands.
#   API (default):  node dist/src/api/main.js
#   worker:         node dist/src/worker/main.js
#   migrations:     node dist/src/cli/migrate.js up
# docker-compose.yml runs all three. npm 10 (in this Node image) ignores package.json's npm 11
# `allowScripts` and runs install scripts as usual, which the Temporal and swc packages need.

# ---- build: every dependency, compile TypeScript, bundle the workflows ----
FROM node:20.19.5-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
COPY scripts ./scripts
# `npm run build` also writes dist/workflow-bundle.js, so the worker never runs webpack at start.
RUN npm run build && test -s dist/workflow-bundle.js

# ---- production dependencies only ----
FROM node:20.19.5-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# ---- runtime ----
FROM node:20.19.5-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Files stay root-owned and read-only to the process; it runs as the image's unprivileged `node` user.
USER node
EXPOSE 8000
CMD ["node", "dist/src/api/main.js"]
