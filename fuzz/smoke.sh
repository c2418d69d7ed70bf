#!/usr/bin/env bash
# Fuzz smoke run: seeds, then every target for N seconds (default 60); fails on any crash.
# Prints one line per target with its exec count and coverage. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); stable Rust with RUSTC_BOOTSTRAP=1 is enough.
#   fuzz/smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
# No sanitizer: the code under test is safe Rust; debug assertions (overflow checks) stay on.
flags=(--sanitizer none --features config)
triple="$(rustc -vV | sed -n 's/^host: //p')"
# `cargo fuzz` has no --locked: check here that the committed Cargo.lock needs no change
# (fetching only what this platform builds), so CI builds exactly what it pins.
if ! cargo fetch --locked --target "$triple" >/dev/null; then
  echo "fuzz/Cargo.lock is out of date (a dependency changed in the crates it builds):" >&2
  echo "  run \`cargo fetch --manifest-path fuzz/Cargo.toml\` and commit fuzz/Cargo.lock" >&2
  exit 1
fi
cargo fuzz build "${flags[@]}"
# cargo fuzz builds into CARGO_TARGET_DIR when it is set.
"${CARGO_TARGET_DIR:-target}/$triple/release/seeds"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list | grep -v '^seeds$')
fi
mkdir -p logs
failed=0
for t in "${targets[@]}"; do
  # A fixed seed (FUZZ_SEED, default 1) makes the smoke run walk the same mutations each time,
  # so CI repeats what was run here; long runs should vary it (FUZZ_SEED=0: random).
  if cargo fuzz run "${flags[@]}" "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
      -seed="${FUZZ_SEED:-1}" >"logs/$t.log" 2>&1; then
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1)"
    echo "$t: $(grep -E '^Done' "logs/$t.log" | tail -1); ${done_line#*DONE   }"
  else
    failed=1
    echo "$t: FAILED (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
    grep -E 'panicked|ERROR|SUMMARY' "logs/$t.log" | head -5 || true
  fi
done
exit "$failed"
