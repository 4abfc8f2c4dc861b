// The benchmark's statistics and its Markdown report (used by bench/run.mjs; see bench/README.md for the method).
//
// report(results, ctx) renders one section per transport: the ratio table (values: medians of the valid runs; ratios:
// medians of the per-round ratios), the validity notes and every run's values; then the cron line.
// `ctx` = { runtime, transports, runs, warmup, duration, quick, info, elapsedS, busyPoll }.

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
export const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(3)}×` : "n/a");
const fmtPct = (x, d = 3) => (Number.isFinite(x) ? `${(x * 100).toFixed(d)} %` : "n/a");
const verdict = (ok) => (ok === undefined ? "" : ok ? "ok" : "**over target**");
const SERVERS = ["raw", "library"];

/** UDP loss of one run: lost / sent over the whole run (warm-up, window and drain). */
const lossRate = (r) => r.udp?.loss_rate ?? NaN;
/** UDP echoes of one run that came back after a later-sent one on the same socket, per echo measured. */
const reorderRate = (r) => (r.udp?.reordered === undefined ? NaN : r.udp.reordered / r.msgs);

/** Times the load generator blocked (and so had to be woken) in one run, per 1,000 packages. */
const wakeRate = (r) => (r.loadgen_blocked === undefined || !(r.msgs > 0) ? NaN : (r.loadgen_blocked / r.msgs) * 1000);

/**
 * Medians over the valid undisturbed runs when there are at least 3 (or all runs when fewer were made), else
 * over every valid run (flagged below the table).
 */
function valid(runs) {
  return undisturbedIfEnough(runs.filter((r) => !r.errors), (r) => !r.disturbed, runs.length);
}

/** The items of `ok` that are `clean` when there are at least 3 of them (or `made`, when fewer were made), else `ok`. */
function undisturbedIfEnough(ok, clean, made) {
  const kept = ok.filter(clean);
  return kept.length >= Math.min(3, made) ? kept : ok;
}

/**
 * The rounds in which both `a` and `b` made a valid run, as [a run, b run] pairs: only rounds where neither was
 * disturbed when there are at least 3 such (or every round when fewer were made), else every valid pair.
 */
function pairs(a, b) {
  const ok = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (!a[i].errors && !b[i].errors) ok.push([a[i], b[i]]);
  return undisturbedIfEnough(ok, ([x, y]) => !x.disturbed && !y.disturbed, a.length);
}

/**
 * `pick(b) / pick(a)` per round, median over the rounds (see {@link pairs}). The two runs of a round follow each
 * other, so a change of the machine's speed between rounds (it moves by up to 2× within minutes) cancels out, which
 * a ratio of the two sides' medians does not: when the machine changes pace in the middle of a series, those
 * medians can come from different paces.
 */
function pairedRatio(a, b, pick) {
  return median(pairs(a, b).map(([x, y]) => pick(y) / pick(x)));
}

const PICK = {
  mps: (r) => r.msgs_per_s,
  mbps: (r) => r.mb_per_s,
  p50: (r) => r.lat_us.p50,
  p99: (r) => r.lat_us.p99,
  cpu: (r) => r.server_cpu_s_per_mpkg,
  cpuShare: (r) => r.server_cpu_s / r.seconds,
  woken: wakeRate,
};

function summarize(spec, byLoad) {
  const rows = [];
  for (const [name, load] of Object.entries(spec.loads)) {
    const byKind = byLoad[name];
    if (!byKind) continue;
    const m = {};
    for (const kind of SERVERS) {
      const v = valid(byKind[kind]);
      m[kind] = {
        n: v.length,
        of: byKind[kind].length,
        disturbed: v.filter((r) => r.disturbed).length,
        mps: median(v.map((r) => r.msgs_per_s)),
        mbps: median(v.map((r) => r.mb_per_s)),
        p50: median(v.map((r) => r.lat_us.p50)),
        p99: median(v.map((r) => r.lat_us.p99)),
        cpu: median(v.map((r) => r.server_cpu_s_per_mpkg)),
        cpuShare: median(v.map((r) => r.server_cpu_s / r.seconds)),
        lgShare: median(v.map((r) => r.loadgen_cpu_s / r.seconds)),
        loss: median(v.map(lossRate)),
        maxLoss: Math.max(0, ...v.map(lossRate).filter(Number.isFinite)),
        reordered: median(v.map(reorderRate)),
        woken: median(v.map(wakeRate)),
      };
    }
    const { raw, library: lib } = m;
    /** library/raw of `key`, per round (see {@link pairedRatio}). */
    const ratio = (key) => pairedRatio(byKind.raw, byKind.library, PICK[key]);
    const tput = ratio("mps");
    const p99 = ratio("p99");
    const cpu = ratio("cpu");
    const t = spec.targets;
    const target = (limit, ok, applies = true) => (limit && applies ? [limit, ok] : ["—", undefined]);
    const cells = [
      [
        "throughput (msgs/s)",
        fmtInt(raw.mps),
        fmtInt(lib.mps),
        fmtRatio(tput),
        ...target(
          t.throughput && `≥ ${t.throughput}×`,
          tput >= t.throughput,
          load.throughputTarget,
        ),
      ],
      ["payload MB/s", fmt(raw.mbps, 1), fmt(lib.mbps, 1), fmtRatio(ratio("mbps")), "—", undefined],
      ["latency p50 (µs)", fmt(raw.p50), fmt(lib.p50), fmtRatio(ratio("p50")), "—", undefined],
      ["latency p99 (µs)", fmt(raw.p99), fmt(lib.p99), fmtRatio(p99), ...target(t.p99 && `≤ ${t.p99}×`, p99 <= t.p99)],
      [
        "server CPU s / Mpkg",
        fmt(raw.cpu, 3),
        fmt(lib.cpu, 3),
        fmtRatio(cpu),
        ...target(
          t.cpu && `≤ ${t.cpu}×`,
          cpu <= t.cpu,
        ),
      ],
      ["server CPU (cores busy)", fmt(raw.cpuShare, 2), fmt(lib.cpuShare, 2), fmtRatio(ratio("cpuShare"))]
        .concat(["—", undefined]),
    ];
    if (raw.woken > 0 || lib.woken > 0) { // none with a busy-polling load generator
      // On loopback the server's CPU pays for waking the load generator: the same work costs more when it has to.
      cells.push([
        "load generator wake-ups per 1,000 packages",
        fmt(raw.woken, 1),
        fmt(lib.woken, 1),
        fmtRatio(ratio("woken")),
        "—",
        undefined,
      ]);
    }
    if (t.throughput && load.throughputTarget) {
      // A saturated server's throughput is the inverse of its CPU per package, so the throughput target leaves the
      // library this much CPU per package on top of raw's: the scale of what it may do per package.
      const extraNs = raw.cpu * 1000 * (cpu - 1);
      const budgetNs = raw.cpu * 1000 * (1 / t.throughput - 1);
      cells.push([
        "server CPU per package over raw (ns)",
        "",
        `${extraNs >= 0 ? "+" : ""}${fmt(extraNs, 0)}`,
        "",
        `≤ +${fmt(budgetNs, 0)} at ${t.throughput}×`,
        undefined,
      ]);
    }
    if (spec.datagrams) {
      cells.push(["loss (lost / sent)", fmtPct(raw.loss), fmtPct(lib.loss), "", "—", undefined]);
      cells.push(["echoes out of order", fmtPct(raw.reordered), fmtPct(lib.reordered), "", "—", undefined]);
    }
    rows.push({ name, label: load.label, m, cells });
  }
  return rows;
}

/** The reference servers (another framework layer, run in the same rounds) against raw, one line per load. */
function referenceLines(spec, byLoad) {
  const out = [];
  for (const [kind, title] of Object.entries(spec.references ?? {})) {
    const parts = [];
    for (const [name, byKind] of Object.entries(byLoad)) {
      if (!byKind[kind]) continue;
      const ref = valid(byKind[kind]);
      /** `kind`/raw (or library/raw) of `key`, per round. */
      const ratio = (key, of = kind) => pairedRatio(byKind.raw, byKind[of], PICK[key]);
      parts.push(
        `${name} ${fmtRatio(ratio("mps"))} throughput, ` +
          `${fmtRatio(ratio("cpu"))} CPU per package (library ${fmtRatio(ratio("cpu", "library"))}), ` +
          `p99 ${fmtRatio(ratio("p99"))}` +
          (spec.datagrams ? `, echoes out of order ${fmtPct(median(ref.map(reorderRate)))}` : "") +
          (ref.length < byKind[kind].length
            ? ` (${ref.length} of ${byKind[kind].length} runs; others disturbed or invalid)`
            : ""),
      );
    }
    if (parts.length) out.push(`For reference, ${title} against raw in the same runs: ${parts.join("; ")}.`, "");
  }
  return out;
}

function idleRows(idle) {
  const out = [];
  const v = (kind) => idle[kind].filter((r) => !r.errors);
  const n = median([...v("raw"), ...v("library")].map((r) => r.sessions));
  const signed = (d) => (Number.isFinite(d) ? `${d >= 0 ? "+" : ""}${fmtInt(d)} B` : "n/a");
  for (
    const [key, label, target] of [
      ["bytes_per_session", "RSS per idle session, after a full GC (B)", true],
      ["bytes_per_session_nogc", "RSS per idle session, no forced GC (B)", false],
    ]
  ) {
    const raw = median(v("raw").map((r) => r[key]));
    const lib = median(v("library").map((r) => r[key]));
    out.push(
      `| ${target ? `idle (${fmtInt(n)} conns)` : ""} | ${label} | ${fmtInt(raw)} | ${fmtInt(lib)} | ` +
        `${signed(lib - raw)} | ${target ? "≤ raw + 2,048 B" : "—"} | ${target ? verdict(lib - raw <= 2048) : ""} |`,
    );
  }
  return out;
}

function idleRunText(r) {
  if (r.errors) return "invalid";
  return `${fmtInt(r.bytes_per_session)} B/session after GC (JS heap ${fmtInt(r.heap_bytes_per_session)}, ` +
    `ArrayBuffers ${fmtInt(r.arraybuffer_bytes_per_session)}), ${fmtInt(r.bytes_per_session_nogc)} without ` +
    `(RSS KiB: ${fmtInt(r.rss_before_kib)} before, ${fmtInt(r.rss_idle_kib)} idle, ` +
    `${fmtInt(r.rss_idle_gc_kib)} idle after GC, ${fmtInt(r.rss_after_close_kib)} after close)`;
}

function loadRunText(r) {
  if (r.errors) return "invalid";
  const u = r.udp;
  const loss = u
    ? ` · lost ${fmtInt(u.timeouts - u.late)} of ${fmtInt(u.sent)} (kernel rcvbuf drops ${u.rcvbuf_errors})` +
      (u.reordered === undefined ? "" : `, ${fmtInt(u.reordered)} out of order`)
    : "";
  const woken = Number.isFinite(wakeRate(r)) ? ` · woken ${fmt(wakeRate(r), 1)}` : "";
  return `${fmtInt(r.msgs_per_s)} · ${fmt(r.lat_us.p99)} · ${fmt(r.server_cpu_s_per_mpkg, 3)}${woken}${loss}` +
    (r.disturbed ? ` (disturbed: ${fmt(r.foreign * 100, 0)} %)` : "");
}

/** One transport's section: table, notes, per-run values. */
function section(spec, res, ctx) {
  const out = [`## ${spec.title}`, ""];
  if (spec.about) out.push(spec.about, "");
  out.push("| load | metric | raw | library | library/raw | target | |");
  out.push("| --- | --- | ---: | ---: | ---: | --- | --- |");
  const rows = summarize(spec, res.loads);
  for (const row of rows) {
    for (const [i, c] of row.cells.entries()) {
      out.push(`| ${i === 0 ? row.label : ""} | ${c[0]} | ${c[1]} | ${c[2]} | ${c[3]} | ${c[4]} | ${verdict(c[5])} |`);
    }
  }
  if (res.idle) out.push(...idleRows(res.idle));
  out.push("");
  out.push(...referenceLines(spec, res.loads));
  const notes = [];
  for (const row of rows) {
    for (const kind of SERVERS) {
      const { n, of, lgShare, disturbed, maxLoss } = row.m[kind];
      if (n < of) {
        notes.push(`${row.name}/${kind}: medians over ${n} of ${of} runs (invalid or disturbed ones left out)`);
      }
      if (disturbed > 0) notes.push(`${row.name}/${kind}: ${disturbed} disturbed run(s) used in the medians`);
      // A busy-polling load generator uses its whole core whatever the load.
      if (lgShare > 0.9 && !ctx.busyPoll) {
        notes.push(
          `${row.name}/${kind}: load generator used ${fmt(lgShare * 100, 0)} % of its core (may be the limit)`,
        );
      }
      if (maxLoss > 0.001) {
        notes.push(`${row.name}/${kind}: up to ${fmtPct(maxLoss, 2)} of the datagrams lost in a run`);
      }
    }
  }
  if (res.idle) {
    for (const kind of SERVERS) {
      const bad = res.idle[kind].filter((r) => r.errors);
      if (bad.length) notes.push(`idle/${kind}: ${bad.length} runs invalid: ${bad[0].first_error}`);
    }
  }
  for (const [name, byKind] of Object.entries(res.loads)) {
    for (const kind of Object.keys(byKind)) {
      for (const r of byKind[kind]) if (r.errors) notes.push(`${name}/${kind} invalid run: ${r.first_error}`);
    }
  }
  out.push(notes.length ? notes.map((n) => `- ${n}`).join("\n") : "All runs valid (no errors, no mismatches).");
  out.push("");
  out.push(
    `Per-run values (msgs/s · p99 µs · server CPU s/Mpkg · load generator wake-ups per 1,000 packages` +
      `${spec.datagrams ? " · datagrams lost, out of order" : ""}; ` +
      "“disturbed” = other processes took more than 10 % of a benchmark core during the window even after a retry):",
  );
  out.push("");
  for (const [name, byKind] of Object.entries(res.loads)) {
    for (const kind of Object.keys(byKind)) {
      out.push(`- ${name} / ${kind}: ${byKind[kind].map(loadRunText).join(" | ")}`);
    }
  }
  if (res.idle) {
    for (const kind of SERVERS) out.push(`- idle / ${kind}: ${res.idle[kind].map(idleRunText).join(" | ")}`);
  }
  out.push("");
  return out;
}

function cronSection(c) {
  const out = [
    "## Cron",
    "",
    "| load | metric | | library | | target | |",
    "| --- | --- | ---: | ---: | ---: | --- | --- |",
  ];
  if (c.error) out.push(`| cron | CPU of 100,000 sessions' 1 s cron | | error | | < 5 % | ${c.error} |`);
  else {
    out.push(
      `| cron (${fmtInt(c.sessions)} sessions, ${c.periodMs} ms, memory transport) | CPU, % of one core | | ` +
        `${fmt(c.costPct, 2)} % | | < 5 % | ${verdict(c.costPct < 5)} |`,
    );
    out.push("");
    out.push(
      `- cron: process ${fmt(c.cronPct, 2)} % with cron vs ${fmt(c.baselinePct, 2)} % / ${fmt(c.baseline2Pct, 2)} % ` +
        `with the same sessions and cron off before / after (idle process ${fmt(c.idlePct, 2)} %); ` +
        `${fmtInt(c.cronCallsPerS)} onCron/s ` +
        `(${fmt(c.cronCallsRatio * 100, 1)} % of expected); worst 10 ms-probe lag ${c.maxLagMs.cron} ms ` +
        `(baseline ${c.maxLagMs.baseline} ms); RSS ${c.rssMiB} MiB; window ${c.windowS} s`,
    );
  }
  out.push("");
  return out;
}

/** The whole Markdown report. */
export function report(results, ctx) {
  const { info } = ctx;
  const names = Object.keys(results.transports);
  // Reference servers run in the same rounds, e.g. "/hono (ws)".
  const refs = names.flatMap((t) =>
    Object.keys(ctx.transports[t].references ?? {})
      .filter((k) => ctx.transports[t].servers[k]?.[ctx.runtime] !== undefined)
      .map((k) => `/${k} (${t})`)
  );
  const out = [`# getty-ts benchmark: ${ctx.runtime} (${names.map((t) => ctx.transports[t].title).join(", ")})`, ""];
  out.push(
    `${new Date(results.started).toISOString()} · library ${info.library} · ${info.runtime} · ` +
      `${info.nproc} × ${info.cpu} · ` +
      `${info.memGiB} GiB · Linux ${info.kernel} · ${info.pinned} · ${ctx.runs} runs per server per load, ` +
      `interleaved raw/library${
        refs.join("")
      } (order reversed every other round); values: medians; ratios: median of the per-round ratios · warm-up ${ctx.warmup} s + ${ctx.duration} s measured per run` +
      `${ctx.quick ? " · **--quick**" : ""} · total ${fmt(ctx.elapsedS / 60, 1)} min`,
  );
  out.push("");
  for (const t of names) out.push(...section(ctx.transports[t], results.transports[t], ctx));
  if (results.cron) out.push(...cronSection(results.cron));
  return out.join("\n");
}
