#!/usr/bin/env bash
# How the bundled models were trained (on 2 CPU cores), then copied into the package.
set -euo pipefail
tunesmith train --model lstm --data bach-chorales --out runs/bundled-bach --size small --dropout 0.2 \
    --epochs 40 --patience 6 --augment-transpose --max-minutes 14 --seed 1 --quiet
tunesmith train --model transformer --data folk --out runs/bundled-folk --size small --epochs 8 \
    --patience 3 --augment-transpose --max-minutes 22 --seed 1 --quiet
python scripts/bundle_model.py runs/bundled-bach bach-chorales --data bach-chorales \
    --description "Four-voice chorales (SATB) in the style of J.S. Bach's chorale harmonisations."
python scripts/bundle_model.py runs/bundled-folk folk --data folk \
    --description "Folk melodies from the Essen, O'Neill (1850) and Ryan's Mammoth collections."
