#!/bin/sh
# The quality ladder (docs/RESULTS.md, "Quality ladder"): the held-out images
# at four fidelity rungs, resumable (rerun the same command to continue).
# Writes bench/results/ladder_*.json; bench/quality_table.py makes the tables.
#   sh bench/quality_ladder.sh [jobs] [images...]
# Default: 2 jobs, the held-out images hopper chelsea coffee retina. The
# sealed images (rocket clock) are run last, once, with the same commands.
# Float fits are shared through $DHQ_FIT_CACHE (default ~/.cache/dhq_rtl/fits).
jobs=${1:-2}; shift 2>/dev/null
images=${*:-hopper chelsea coffee retina}
out=bench/results
q="python bench/quality.py --jobs $jobs --images $images --resume --fit-cache ${DHQ_FIT_CACHE:-$HOME/.cache/dhq_rtl/fits}"
set -e
# 1. the best quantizer at 8 and 6 bits, three seeds, on the two small rungs; 4 bits on seed 0
$q --rungs 64:32 128:32 --methods fp32 best --bits w8a8 w6a6 --seeds 0 1 2 --json $out/ladder_best.json
$q --rungs 64:32 128:32 --methods fp32 best --bits w4a4 --seeds 0 --json $out/ladder_best.json
# 2. the faithful DHQ quantizer (every input rotated) and naive beside it, seed 0, 64²
$q --rungs 64:32 --methods fp32 dhq naive --bits w8a8 w6a6 w4a4 --seeds 0 --json $out/ladder_faithful.json
# 3. the first-wide recipe (layer 0's weights at 12 bits), seed 0, 64²
$q --rungs 64:32 --methods fp32 best --bits w6a6 w4a4 --recipes first-wide --seeds 0 --json $out/ladder_recipes.json
# 4. width 64 at 128²: 8 and 6 bits, seed 0
$q --rungs 128:64 --methods fp32 best --bits w8a8 w6a6 --seeds 0 --json $out/ladder_best.json
# 5. the rest of the ladder: seeds 1 and 2 at width 64, 4 bits on seeds 1 and 2,
#    width 128, the faithful and recipe rows at 128²
$q --rungs 128:64 --methods fp32 best --bits w8a8 w6a6 --seeds 1 2 --json $out/ladder_best.json
$q --rungs 64:32 128:32 --methods fp32 best --bits w4a4 --seeds 1 2 --json $out/ladder_best.json
$q --rungs 128:64 --methods fp32 best --bits w4a4 --seeds 0 --json $out/ladder_best.json
$q --rungs 128:128 --methods fp32 best --bits w8a8 w6a6 --seeds 0 --json $out/ladder_best.json
$q --rungs 128:32 --methods fp32 dhq naive --bits w8a8 w6a6 w4a4 --seeds 0 --json $out/ladder_faithful.json
$q --rungs 128:32 --methods fp32 best --bits w6a6 w4a4 --recipes first-wide --seeds 0 --json $out/ladder_recipes.json
