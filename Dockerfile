# syntax=docker/dockerfile:1
# switchyard image: build with `docker build -t switchyard .`, run with the config mounted:
#   docker run -v $PWD/switchyard.yaml:/etc/switchyard/switchyard.yaml:ro -p 6432:6432 -p 9190:9190 switchyard
# The config's admin.listen and listen addresses must bind 0.0.0.0 (not 127.0.0.1) to be reachable.

# 1. Build: dev dependencies + TypeScript -> dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Runtime dependencies only.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# 3. The image: node, dist/, production node_modules, the example config; runs as the `node` user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SWITCHYARD_CONFIG=/etc/switchyard/switchyard.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
USER node
# 6432: the PostgreSQL listener of the example; 9190: admin HTTP (/metrics, /healthz, /readyz, stats page).
EXPOSE 6432 9190
# Node's fetch, so the image needs no curl. The admin port is the config's admin.listen port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SWITCHYARD_ADMIN_PORT||9190)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM stops gracefully; SIGHUP (or a change of the mounted file) reloads.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["start", "--workers", "auto"]
