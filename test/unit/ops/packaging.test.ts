import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfigText, formatProblem } from '../../../src/config/load.js';
import { splitHostPort } from '../../../src/frontend/listen.js';

/*
 * No Docker engine or Kubernetes API here: these checks read the manifests and
 * the Dockerfile and make sure they agree with each other and with the config
 * they ship. Building and running the image is not tested.
 */
const K = 'deploy/kubernetes';
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const load = (f: string): Obj => {
  const docs = parseAllDocuments(readFileSync(`${K}/${f}`, 'utf8'));
  expect(docs).toHaveLength(1);
  return docs[0]!.toJS() as Obj;
};

describe('deploy/kubernetes', () => {
  const cm = load('configmap.yaml');
  const dep = load('deployment.yaml');
  const svc = load('service.yaml');
  const pdb = load('pdb.yaml');
  const sm = load('servicemonitor.yaml');
  const secret = load('secret.yaml');
  const container = dep.spec.template.spec.containers[0];
  const ports = new Map<string, number>(container.ports.map((p: Obj) => [p.name, p.containerPort]));

  it('the ConfigMap carries a valid switchyard config (with the Secret as environment)', () => {
    const r = loadConfigText(cm.data['switchyard.yaml'], { env: secret.stringData, file: 'switchyard.yaml' });
    expect(r.ok ? [] : r.problems.map((p) => formatProblem(p, 'switchyard.yaml'))).toEqual([]);
  });

  it('probes and ports agree with the config: readiness on /readyz and liveness on /healthz at admin.listen', () => {
    const cfg = parse(cm.data['switchyard.yaml']) as Obj;
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(ports.get(container.readinessProbe.httpGet.port)).toBe(splitHostPort(cfg.admin.listen).port);
    expect(ports.get(container.livenessProbe.httpGet.port)).toBe(splitHostPort(cfg.admin.listen).port);
    // Listeners bind every interface, or the pod's port is unreachable.
    for (const a of [cfg.admin.listen, cfg.clusters[0].listen, cfg.clusters[0].listen_read_only]) expect(splitHostPort(a).host).toBe('0.0.0.0');
    expect(ports.get('postgres')).toBe(splitHostPort(cfg.clusters[0].listen).port);
    expect(ports.get('postgres-ro')).toBe(splitHostPort(cfg.clusters[0].listen_read_only).port);
  });

  it('mounts the ConfigMap as a directory (symlink swaps reach the watcher) at the path the container reads', () => {
    const mount = container.volumeMounts.find((m: Obj) => m.name === 'config');
    expect(mount.subPath).toBeUndefined();
    const vol = dep.spec.template.spec.volumes.find((v: Obj) => v.name === 'config');
    expect(vol.configMap.name).toBe(cm.metadata.name);
    const cIdx = container.args.indexOf('-c');
    expect(container.args[cIdx + 1]).toBe(`${mount.mountPath}/switchyard.yaml`);
    expect(container.envFrom[0].secretRef.name).toBe(secret.metadata.name);
    expect(dep.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });

  it('Service, PodDisruptionBudget and ServiceMonitor select the pods and name real ports', () => {
    const labels = dep.spec.template.metadata.labels as Record<string, string>;
    for (const sel of [svc.spec.selector, pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels]) {
      for (const [k, v] of Object.entries(sel as Record<string, string>)) expect(labels[k]).toBe(v);
    }
    for (const p of svc.spec.ports) expect(ports.has(p.targetPort)).toBe(true);
    expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(sm.spec.endpoints[0].port);
    expect(sm.spec.endpoints[0].path).toBe('/metrics');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(svc.metadata.labels[k]).toBe(v);
    expect(pdb.spec.minAvailable).toBeLessThan(dep.spec.replicas);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync('Dockerfile', 'utf8');
  it('is multi-stage, runs as a non-root user, checks /healthz, reads a mounted config', () => {
    expect(text.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(text).toMatch(/SWITCHYARD_CONFIG=\/etc\/switchyard\/switchyard\.yaml/);
    expect(text).toMatch(/^ENTRYPOINT \["node", "dist\/cli\.js"\]/m);
  });
});
