#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) and prints one line
# a target: runs, coverage, corpus size. Each starts from its committed
# corpus, tools/fuzz/corpus/<target>. Findings go to a scratch directory
# and are dropped, unless `keep` is given: then the valid inputs `seed`
# writes (which follow the formats as they change) and the findings are
# merged, minimised, into the corpus, to be committed. CI calls it with a
# short time and leaves the tree as it was.
# Usage: tools/fuzz/run-all.sh [SECONDS] [keep]
# (FUZZ_TARGETS="a b" runs only those targets.)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-600}"
keep="${2:-}"
read -r -a targets <<<"${FUZZ_TARGETS:-frame_stream wire_peer wire_server wire_admin piece_stream config topology_csv revocation_list publication stored_records text_inputs}"
cargo +nightly fuzz build --fuzz-dir tools/fuzz >/dev/null 2>&1 || cargo +nightly fuzz build --fuzz-dir tools/fuzz
bin=tools/fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p tools/fuzz/artifacts
if [ "$keep" = keep ]; then "$bin/seed"; fi
for t in "${targets[@]}"; do
    scratch=$(mktemp -d)
    log=$(mktemp)
    # -timeout: an input slower than 2 s (a quadratic case) is a finding.
    if ! "$bin/$t" "$scratch" "tools/fuzz/corpus/$t" -artifact_prefix="tools/fuzz/artifacts/$t-" \
        -max_total_time="$secs" -timeout=2 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        echo "FAILED: $t"; tail -40 "$log"; exit 1
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    if [ "$keep" = keep ]; then
        # Keep the corpus small: only inputs that add coverage.
        merged=$(mktemp -d)
        "$bin/$t" "$merged" "tools/fuzz/corpus/$t" "$scratch" -merge=1 >/dev/null 2>&1
        rm -rf "tools/fuzz/corpus/$t" && mv "$merged" "tools/fuzz/corpus/$t"
    fi
    echo "$t: $runs runs in ${secs} s, coverage $cov, corpus $(ls "tools/fuzz/corpus/$t" | wc -l) inputs (+$(ls "$scratch" | wc -l) new)"
    rm -rf "$scratch" "$log"
done
