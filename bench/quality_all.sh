#!/bin/sh
# The whole Quality benchmark in one go on a many-core machine (CPU only):
# the main table, then the ablations and candidate default models side by
# side. Writes into $1 (default ./quality-out). The same commands run on any CPU.
out=${1:-quality-out}
mkdir -p "$out"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
python -c "import torch, os; print('torch', torch.__version__, 'cpus', os.cpu_count())" || exit 3
lscpu | grep 'Model name'
t0=$(date +%s)
# a 4-bit row is ~4 min on one core: the timeouts leave room for a slower box
timeout 900 python bench/quality.py --jobs 16 --json "$out/main.json" --markdown "$out/main.md" 2>"$out/main.log"
echo "main: $(( $(date +%s) - t0 )) s"
timeout 900 python bench/quality.py --jobs 16 --images hopper --json "$out/hopper.json" --markdown "$out/hopper.md" \
    2>"$out/hopper.log"
echo "held-out image: $(( $(date +%s) - t0 )) s"
timeout 900 python bench/quality.py --jobs 6 --images camera --methods fp32 naive dhq dhq-auto --quantizer minmax \
    --json "$out/minmax.json" 2>>"$out/ablations.log" &
for pb in 8 12; do timeout 900 python bench/quality.py --jobs 2 --images camera --methods fp32 naive dhq \
    --bits w8a8 --phase-bits $pb --json "$out/phase$pb.json" 2>>"$out/ablations.log" & done
for c in "dhq-auto lsq" "dhq lsq" "naive minmax" "dhq minmax"; do set -- $c
    timeout 900 python -m dhq_rtl.train --quiet --json --method $1 --quantizer $2 --out "$out/default-$1-$2.dhq" \
        > "$out/default-$1-$2.json" 2>>"$out/ablations.log" & done
wait
echo "all: $(( $(date +%s) - t0 )) s"
