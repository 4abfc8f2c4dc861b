/**
 * Endpoint counters in the Prometheus text exposition format (version 0.0.4), for scraping. Runtime-neutral:
 * serve the text from any HTTP handler, or with `metricsRoute` from the hono entry point.
 *
 * @module
 */
import type { EndPoint } from "./endpoint.ts";
import type { EndpointStats } from "./endpoint_core.ts";

/** Anything with counters: servers, clients, UDP endpoints, WebSocket handlers. */
export interface StatsSource {
  /** The endpoint's counters (numeric fields are exported; extra numeric fields too). */
  stats(): EndpointStats;
  /** The endpoint kind, used as a label. */
  readonly endPointType?: EndPoint["endPointType"];
}

const HELP: Record<string, [type: "gauge" | "counter", help: string]> = {
  open: ["gauge", "Sessions currently open"],
  opened: ["counter", "Sessions opened since start"],
  refused: ["counter", "Connections or peers refused"],
  readBytes: ["counter", "Bytes received"],
  writeBytes: ["counter", "Bytes sent"],
  readPkgs: ["counter", "Packages received"],
  writePkgs: ["counter", "Packages sent"],
  errors: ["counter", "Errors reported to onError"],
};

function metricName(field: string): string {
  const snake = field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return `getty_${snake}${HELP[field]?.[0] === "counter" ? "_total" : ""}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * Renders the counters of named endpoints as Prometheus text: one metric per counter, labelled with the
 * endpoint's name and kind (e.g. `getty_read_pkgs_total{endpoint="api",type="TCP_SERVER"} 42`).
 *
 * @example
 * ```ts
 * import { prometheusText, TcpServer } from "@getty/getty";
 * const api = new TcpServer({ port: 0 });
 * console.log(prometheusText({ api }));
 * ```
 */
export function prometheusText(endpoints: Record<string, StatsSource>): string {
  const series = new Map<string, string[]>();
  for (const [name, endpoint] of Object.entries(endpoints)) {
    const stats = endpoint.stats() as unknown as Record<string, unknown>;
    const labels = `endpoint="${escapeLabel(name)}"` +
      (endpoint.endPointType ? `,type="${escapeLabel(endpoint.endPointType)}"` : "");
    for (const [field, value] of Object.entries(stats)) {
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      const metric = metricName(field);
      if (!series.has(metric)) series.set(metric, []);
      series.get(metric)!.push(`${metric}{${labels}} ${value}`);
    }
  }
  const out: string[] = [];
  for (const [metric, lines] of series) {
    const field = Object.keys(HELP).find((f) => metricName(f) === metric);
    const [type, help] = field ? HELP[field] : ["counter" as const, "Endpoint-specific counter"];
    out.push(
      `# HELP ${metric} ${help}`,
      `# TYPE ${metric} ${type === "counter" && !metric.endsWith("_total") ? "gauge" : type}`,
      ...lines,
    );
  }
  return out.join("\n") + "\n";
}
