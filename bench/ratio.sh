#!/usr/bin/env bash
# ratio.sh: compare each benchmark X with its raw protoactor-go twin XProtoactor.
#
# Usage: bench/ratio.sh [go-test-bench-output]   (default: standard input)
#   go test -run '^$' -bench . ./actor | bench/ratio.sh
#
# Throughput is the benchmark's first custom metric measured per second
# (rt/s, msg/s, ...), or op/s derived from ns/op when it reports none. With
# -count N the runs are averaged. For each pair it prints, for example:
#   PingPong: ours 1.40M rt/s, protoactor 0.11M rt/s, ratio 12.9x
# A ratio above 1 means ours is faster.
set -euo pipefail

if [[ $# -gt 1 ]]; then
	echo "usage: $0 [bench-output-file]" >&2
	exit 2
fi
in=${1:--}
if [[ $in != - && ! -r $in ]]; then
	echo "$0: cannot read $in" >&2
	exit 1
fi

LC_ALL=C awk '
function human(v, scale) {
	if (scale >= 1e9) return sprintf("%.2fG", v / 1e9)
	if (scale >= 1e6) return sprintf("%.2fM", v / 1e6)
	if (scale >= 1e3) return sprintf("%.1fk", v / 1e3)
	return sprintf("%.1f", v)
}
# twin("BenchmarkAsk/n=1") = "BenchmarkAskProtoactor/n=1"
function twin(name,   i) {
	i = index(name, "/")
	if (i == 0) return name "Protoactor"
	return substr(name, 1, i - 1) "Protoactor" substr(name, i)
}
/^pkg: / { pkg = $2; next }
/^Benchmark[^ \t]*[ \t]+[0-9]+[ \t]/ {
	name = $1
	sub(/-[0-9]+$/, "", name)          # the GOMAXPROCS suffix
	v = ""; unit = ""; nsop = ""
	for (i = 3; i < NF; i += 2) {
		if ($(i + 1) == "ns/op") nsop = $i
		else if (v == "" && $(i + 1) ~ /\/s$/) { v = $i; unit = $(i + 1) }
	}
	if (v == "" && nsop != "" && nsop + 0 > 0) { v = 1e9 / nsop; unit = "op/s" }
	if (v == "") next
	key = pkg SUBSEP name
	if (!(key in n)) { order[++count] = key; names[key] = name }
	n[key]++; sum[key] += v; units[key] = unit
}
END {
	pairs = 0
	for (k = 1; k <= count; k++) {
		key = order[k]; name = names[key]
		if (name ~ /^Benchmark[^\/]*Protoactor(\/|$)/) continue
		split(key, parts, SUBSEP)
		peer = parts[1] SUBSEP twin(name)
		label = substr(name, length("Benchmark") + 1)
		ours = sum[key] / n[key]
		if (!(peer in n)) {
			lone = lone sprintf("  %s: ours %s %s\n", label, human(ours, ours), units[key])
			continue
		}
		theirs = sum[peer] / n[peer]
		scale = ours > theirs ? ours : theirs
		ratio = theirs > 0 ? ours / theirs : 0
		printf "%s: ours %s %s, protoactor %s %s, ratio %s\n", label,
			human(ours, scale), units[key], human(theirs, scale), units[peer],
			(theirs > 0 ? sprintf(ratio < 1 ? "%.2fx" : "%.1fx", ratio) : "n/a")
		pairs++
	}
	if (pairs == 0) print "no benchmark pairs (X and XProtoactor) found"
	if (lone != "") printf "without a protoactor twin:\n%s", lone
}
' "$in"
