#!/bin/sh
# The quality ladder (docs/RESULTS.md, "Quality ladder"): the held-out images
# at four fidelity rungs, resumable (rerun the same command to continue).
# Writes bench/results/ladder_*.json; bench/quality_table.py makes the tables.
#   sh bench/quality_ladder.sh [jobs] [images...]
# Default: 2 jobs, the held-out images hopper chelsea coffee retina. The
# sealed images (rocket clock) are run last, once, with the same commands.
jobs=${1:-2}; shift 2>/dev/null
images=${*:-hopper chelsea coffee retina}
out=bench/results
q="python bench/quality.py --jobs $jobs --images $images --resume"
set -e
# 1. the best quantizer at every width, three seeds, on the two small rungs
$q --rungs 64:32 128:32 --methods fp32 best --bits w8a8 w6a6 w4a4 --seeds 0 1 2 --json $out/ladder_best.json
# 2. width 64: 8 and 6 bits on three seeds, 4 bits on one
$q --rungs 128:64 --methods fp32 best --bits w8a8 w6a6 --seeds 0 1 2 --json $out/ladder_best_w64.json
$q --rungs 128:64 --methods fp32 best --bits w4a4 --seeds 0 --json $out/ladder_best_w64.json
# 3. the faithful DHQ quantizer (every input rotated) and naive beside it, seed 0
$q --rungs 64:32 128:32 128:64 --methods fp32 dhq naive --bits w8a8 w6a6 w4a4 --seeds 0 --json $out/ladder_faithful.json
# 4. width 128: 8 and 6 bits, seed 0
$q --rungs 128:128 --methods fp32 best --bits w8a8 w6a6 --seeds 0 --json $out/ladder_best_w128.json
# 5. the first-wide recipe (layer 0's weights at 12 bits), seed 0
$q --rungs 64:32 128:32 128:64 --methods fp32 best --bits w6a6 w4a4 --recipes first-wide --seeds 0 \
    --json $out/ladder_recipes.json
