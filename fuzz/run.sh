#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each (default 600), growing the corpus kept
# in fuzz/corpus/<target>. A crash stops its target and leaves the input in fuzz/artifacts.
#   fuzz/run.sh            # ten minutes per target
#   fuzz/run.sh 60 imports # one minute of one target
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cargo fuzz list)
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target: $seconds s"
    # An import parses on a thread of its own, which may still be finishing when the next
    # input starts: LeakSanitizer takes its memory for a leak. Leaks are not checked there.
    leaks=1
    [ "$target" = imports ] && leaks=0
    # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -detect_leaks="$leaks" -print_final_stats=1
done
