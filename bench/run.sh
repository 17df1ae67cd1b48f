#!/usr/bin/env bash
# Storage engine benchmarks of the chunked layout, on the data set of
# bench/dataset.go (8 GPUs at 20 Hz change-only + 2 CPUs with DRAM at
# 10 Hz, 1 h and 24 h), the plot of its 8 GPUs over the whole day, its
# report and its Parquet export (cold: needs root to drop the page cache).
#
#   bench/run.sh            everything (about 8 minutes on 2 cores)
#   bench/run.sh --quick    1 h ingest only, 10 s RSS run, fewer query rounds
#
# Environment: WATTREC_BENCH_DIR (scratch directory, default $TMPDIR; it
# needs about 1 GB), WATTREC_BENCH_RSS_SECONDS (default 60).
# It prints the raw `go test -bench` lines, then one table, then the
# issue-14 goals beside VictoriaMetrics measured in the same run
# (BenchmarkVictoriaMetrics; skipped, and "—", when it is not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ingest='^BenchmarkIngest$'
rounds=10
if [[ "${1:-}" == "--quick" ]]; then
  ingest='^BenchmarkIngest$/span=1h'
  rounds=3
  export WATTREC_BENCH_RSS_SECONDS=${WATTREC_BENCH_RSS_SECONDS:-10}
fi

raw=$(mktemp)
bin=$(mktemp -d)
trap 'rm -rf "$raw" "$bin"' EXIT
# The real binary, for the RSS of `wattrec record` itself.
go build -o "$bin/wattrec" . && export WATTREC_BENCH_WATTREC="$bin/wattrec"
{
  go test -run '^$' -bench "$ingest" -benchtime 1x -timeout 60m ./bench
  go test -run '^$' -bench '^BenchmarkRSS$' -benchtime 1x -timeout 60m ./bench
  go test -run '^$' -bench '^Benchmark(Joules|Scan|Plot|Report|QueryEvery|Export)$' -benchtime "${rounds}x" -timeout 60m ./bench
  go test -run '^$' -bench '^Benchmark(Push|IngestWith)$' -benchtime 1x -timeout 60m ./bench
  go test -run '^$' -bench '^BenchmarkVictoriaMetrics$' -benchtime 1x -timeout 60m ./bench
} | tee "$raw"

echo
awk -v nproc="$(nproc)" -v gover="$(go env GOVERSION)" '
# Benchmark lines: name, iterations, then value/unit pairs.
/^Benchmark/ {
  key = $1
  sub(/-[0-9]+$/, "", key); sub(/^Benchmark/, "", key)
  for (i = 3; i < NF; i += 2) m[key, $(i+1)] = $i
  next
}
/^cpu:/ { sub(/^cpu: */, ""); sub(/ *$/, ""); cpu = $0 }
function fmtn(v, unit) {
  if (v == "") return "—"
  if (unit == "rate") {
    if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
    return sprintf("%.0f k", v / 1e3)
  }
  if (unit == "ms") { if (v < 10) return sprintf("%.2f ms", v); return sprintf("%.0f ms", v) }
  if (unit == "B") return sprintf("%.2f", v)
  if (unit == "MB") return sprintf("%.1f MB", v)
  if (unit == "KiB") return sprintf("%.0f KiB", v)
  if (unit == "s") return sprintf("%.2f s", v)
  return v
}
# join appends part to list with a comma, unless part is missing.
function join(list, part) {
  if (part == "" || part ~ /^—/) return list
  return list == "" ? part : list ", " part
}
# ratio is a ÷ b, or "—" when either is missing.
function ratio(a, b) {
  if (a == "" || b == "" || b == 0) return "—"
  return sprintf("%.2f×", a / b)
}
# goal notes one check of a goal row: v against limit ("le" or "ge");
# verdict then sums up the row.
function goal(v, op, limit) {
  if (v == "") { miss++; return }
  if ((op == "le" && v + 0 <= limit) || (op == "ge" && v + 0 >= limit)) met++
  else failed++
}
function verdict(   out) {
  if (failed > 0) out = "not met"
  else if (met == 0) out = "—"
  else if (miss > 0) out = "met (part not measured)"
  else out = "met"
  met = miss = failed = 0
  return out
}
function grow(label, w, vm, g, r) {
  printf "| %s | %s | %s | %s | %s | %s |\n", label, w == "" ? "—" : w, vm == "" ? "—" : vm, g, r, verdict()
}
# row prints one measurement, unless the run did not make it.
function row(label, key, metric, unit) {
  if (m[key, metric] == "") return
  printf "| %s | %s |\n", label, fmtn(m[key, metric], unit)
}
END {
  printf "wattrec storage benchmarks: %s, %s CPUs, %s\n", cpu, nproc, gover
  for (s = 1; s <= 2; s++) {
    span = (s == 1) ? "1h" : "24h"
    if (m["Ingest/span=" span, "events"] != "")
      printf "data set %s: %d events, %d samples\n", span, m["Ingest/span=" span, "events"], m["Ingest/span=" span, "samples"]
  }
  print ""
  print "| measurement | value |"
  print "|---|---|"
  for (s = 1; s <= 2; s++) {
    span = (s == 1) ? "1h" : "24h"
    k = "Ingest/span=" span
    row("ingest " span ", events/s (SSE → recorder → durable)", k, "events/s", "rate")
    row("ingest " span ", samples/s", k, "samples/s", "rate")
    row("bytes/sample on disk after " span " (du)", k, "disk-B/sample", "B")
    row("bytes/sample, file size after " span " (ls)", k, "file-B/sample", "B")
    row("recorder peak RSS during the " span " ingest", k, "peak-RSS-MB", "MB")
  }
  for (c = 1; c <= 2; c++) for (g = 1; g <= 2; g++) for (w = 1; w <= 2; w++) {
    cs = (c == 1) ? "yes" : "no"; gpus = (g == 1) ? 1 : 8; win = (w == 1) ? "1h" : "24h"
    k = "Joules/counters=" cs "/gpus=" gpus "/window=" win
    row(sprintf("joules, %d GPU%s × %s, warm (query.Energy), %s", gpus, gpus > 1 ? "s" : "", win,
      cs == "yes" ? "anchored to counters read every 10 s" : "stream only (no counter readings)"), k, "ms/query", "ms")
  }
  row("scan every reading of the 24 h file, readings/s", "Scan/span=24h", "readings/s", "rate")
  row("query --every 10ms --format csv, 10 min of 8 GPUs + 2 CPUs (1.14 M rows), ms", "QueryEvery/format=csv", "ms/query", "ms")
  row("query --every 10ms --format csv: peak heap in use", "QueryEvery/format=csv", "peak-heap-MB", "MB")
  row("query --every 10ms --format json, the same rows, ms", "QueryEvery/format=json", "ms/query", "ms")
  row("push the 24 h file into a discarding receiver, samples/s", "Push/span=24h/receiver=discard", "samples/s", "rate")
  row("push the 24 h file into a local VictoriaMetrics, samples/s", "Push/span=24h/receiver=victoria-metrics", "samples/s", "rate")
  row("push the 24 h file into a local VictoriaMetrics, seconds", "Push/span=24h/receiver=victoria-metrics", "s", "")
  row("ingest 24 h, events/s, plain (same run as the next two)", "IngestWith/span=24h/with=none", "events/s", "rate")
  row("ingest 24 h, events/s, with the metrics observer", "IngestWith/span=24h/with=metrics", "events/s", "rate")
  row("ingest 24 h, events/s, with remote-write catching up", "IngestWith/span=24h/with=remote-write", "events/s", "rate")
  row("ingest 24 h, CPU ns/event, plain", "IngestWith/span=24h/with=none", "cpu-ns/event", "")
  row("ingest 24 h, CPU ns/event, with the metrics observer", "IngestWith/span=24h/with=metrics", "cpu-ns/event", "")
  row("ingest 24 h, CPU ns/event, with remote-write catching up", "IngestWith/span=24h/with=remote-write", "cpu-ns/event", "")
  for (f = 1; f <= 2; f++) {
    fmt = (f == 1) ? "svg" : "png"
    k = "Plot/gpus=8/window=24h/format=" fmt
    row("plot, 8 GPUs × 24 h, 1200×600 " fmt " (wattrec plot), warm", k, "ms/plot", "ms")
    row("plot, 8 GPUs × 24 h, " fmt " file size", k, "KiB", "KiB")
  }
  row("report of the 24 h file (wattrec report), warm", "Report/window=24h", "ms/report", "ms")
  row("report of the 24 h file, HTML size", "Report/window=24h", "KiB", "KiB")
  for (c = 1; c <= 2; c++) {
    cache = (c == 1) ? "warm" : "cold"
    k = "Export/span=24h/cache=" cache
    row("Parquet export of the 24 h file, " cache ", seconds (into a byte counter)", k, "s", "")
    row("Parquet export of the 24 h file, cold: of that, store.Open (reads every page)", k, "open-s", "")
    row("Parquet export of the 24 h file, " cache ", rows/s", k, "rows/s", "rate")
    row("Parquet export of the 24 h file, " cache ", bytes/row", k, "B/sample", "B")
  }
  row("recorder peak RSS, 100 endpoints at default rates", "RSS/recorder=library/endpoints=100", "peak-RSS-MB", "MB")
  row("recorder RSS at the end of that run", "RSS/recorder=library/endpoints=100", "RSS-MB", "MB")
  row("`wattrec record`, 100 endpoints: peak RSS", "RSS/recorder=binary/endpoints=100", "peak-RSS-MB", "MB")
  row("`wattrec record`, 100 endpoints: peak anonymous RSS (heap, stacks: what --memory-limit governs)", "RSS/recorder=binary/endpoints=100", "peak-anon-MB", "MB")
  row("`wattrec record`, 100 endpoints: file-backed RSS at the end (pages of the binary and of the mapped file)", "RSS/recorder=binary/endpoints=100", "file-MB", "MB")
  row("`wattrec record --memory-limit off` (baseline), 100 endpoints: peak RSS", "RSS/recorder=binary-nolimit/endpoints=100", "peak-RSS-MB", "MB")
  row("`wattrec record --memory-limit off` (baseline), 100 endpoints: peak anonymous RSS", "RSS/recorder=binary-nolimit/endpoints=100", "peak-anon-MB", "MB")

  # The issue-14 goals, wattrec beside VictoriaMetrics.
  ing = "Ingest/span=24h"; vm = "VictoriaMetrics/span=24h"; j = "Joules/counters=no/gpus=8/window=24h"
  warm = "Export/span=24h/cache=warm"; cold = "Export/span=24h/cache=cold"
  rss = "RSS/recorder=binary/endpoints=100"; every = "QueryEvery/format=csv"
  print ""
  print "issue 14 goals (24 h data set; VictoriaMetrics: local single node, same run, same cores)"
  print ""
  print "| | wattrec | VictoriaMetrics | goal | ratio | met? |"
  print "|---|---|---|---|---|---|"
  if (m[vm, "samples/s"] != "") {
    goal(m[ing, "samples/s"] == "" ? "" : m[ing, "samples/s"] / m[vm, "samples/s"], "ge", 1)
  } else goal(m[ing, "events/s"], "ge", 3.6e6)
  grow("ingest (wattrec: live SSE until durable; VM: JSON import until queryable)",
    join(join("", fmtn(m[ing, "events/s"], "rate") " events/s"), fmtn(m[ing, "samples/s"], "rate") " samples/s"),
    m[vm, "samples/s"] == "" ? "" : fmtn(m[vm, "samples/s"], "rate") " samples/s",
    "≥ VM samples/s (issue: ≥ 3.6 M events/s)", ratio(m[ing, "samples/s"], m[vm, "samples/s"]))
  goal(m[ing, "disk-B/sample"], "le", 2.3)
  grow("bytes/sample on disk (du)", fmtn(m[ing, "disk-B/sample"], "B"), fmtn(m[vm, "disk-B/sample"], "B"),
    "≤ 2.3", ratio(m[ing, "disk-B/sample"], m[vm, "disk-B/sample"]))
  if (m[vm, "integrate-ms"] != "") goal(m[j, "ms/query"] == "" ? "" : m[vm, "integrate-ms"] / m[j, "ms/query"], "ge", 1)
  grow("24 h × 8 GPU joules (wattrec: in process; VM: integrate() over HTTP)", fmtn(m[j, "ms/query"], "ms"),
    fmtn(m[vm, "integrate-ms"], "ms"), "keep (faster than VM)", ratio(m[vm, "integrate-ms"], m[j, "ms/query"]))
  goal(m[warm, "s"], "le", 1.0); goal(m[cold, "s"], "le", 3)
  w = join("", m[warm, "s"] == "" ? "" : "warm " fmtn(m[warm, "s"], "s"))
  w = join(w, m[warm, "B/sample"] == "" ? "" : fmtn(m[warm, "B/sample"], "B") " B/sample")
  w = join(w, m[cold, "s"] == "" ? "" : "cold " fmtn(m[cold, "s"], "s"))
  grow("Parquet export 24 h", w, "", "≤ 1.0 s warm, ≤ 3 s cold", "—")
  goal(m[ing, "peak-RSS-MB"], "le", 64); goal(m[rss, "peak-RSS-MB"], "le", 48)
  w = join("", m[ing, "peak-RSS-MB"] == "" ? "" : fmtn(m[ing, "peak-RSS-MB"], "MB") " at full rate")
  w = join(w, m[rss, "peak-RSS-MB"] == "" ? "" : fmtn(m[rss, "peak-RSS-MB"], "MB") " at 100 endpoints")
  grow("recorder peak RSS", w, "", "≤ 64 MB at full rate, ≤ 48 MB at 100 endpoints", "—")
  goal(m[every, "ms/query"] == "" ? "" : m[every, "ms/query"] / 1000, "le", 0.3); goal(m[every, "peak-heap-MB"], "le", 32)
  w = join(join("", fmtn(m[every, "ms/query"], "ms")), m[every, "peak-heap-MB"] == "" ? "" : fmtn(m[every, "peak-heap-MB"], "MB"))
  grow("query --every 10ms --format csv", w, "", "≤ 0.3 s, ≤ 32 MB (heap in use)", "—")
  print ""
  print "ratio: ingest = wattrec samples/s ÷ VM samples/s; bytes = wattrec ÷ VM; joules = VM ms ÷ wattrec ms."
  if (m[vm, "J-diff-ppm"] != "")
    printf "VM integrate() gave %.0f J for the 8 GPUs over 24 h, %+.3g ppm from wattrec (query.Energy).\n", m[vm, "J"], m[vm, "J-diff-ppm"]
  if (m[vm, "samples/s"] == "") print "VictoriaMetrics was not measured (not installed?): the ingest goal is checked against 3.6 M events/s."
}' "$raw"
