#!/usr/bin/env bash
# How the bundled models were trained (on 2 CPU cores), then copied into the package.
set -euo pipefail
tunesmith train --family lstm --data bach-chorales --out runs/bundled-bach --size small --dropout 0.2 \
    --epochs 40 --patience 6 --augment-transpose --train-minutes 14 --seed 1 --quiet
tunesmith train --family transformer --data folk --out runs/bundled-folk --size small --epochs 8 \
    --patience 3 --augment-transpose --train-minutes 22 --seed 1 --quiet
python scripts/bundle_model.py runs/bundled-bach bach-chorales --data bach-chorales \
    --description "Four-voice chorales (SATB) in the style of J.S. Bach's chorale harmonisations."
python scripts/bundle_model.py runs/bundled-folk folk --data folk \
    --description "Folk melodies from the Essen, O'Neill (1850) and Ryan's Mammoth collections."
# issue 5: the chorale CNN (Coconet) and the piano-roll GAN
tunesmith train --family cnn --data bach-chorales --out runs/chorale-cnn --epochs 24 --steps-per-epoch 100 \
    --train-minutes 42 --threads 1 --checkpoint-every 100 --quiet
tunesmith train --family gan --data bach-chorales --out runs/chorale-gan --epochs 15 --steps-per-epoch 100 \
    --train-minutes 25 --threads 1 --quiet
python scripts/bundle_simple.py runs/chorale-cnn chorale-cnn
python scripts/bundle_simple.py runs/chorale-gan chorale-gan
# issue 6: the note data set, the note classifier and the WaveGAN
tunesmith audio dataset --out ~/.cache/tunesmith/audio/notes
tunesmith audio train-classifier --data ~/.cache/tunesmith/audio/notes --out runs/notes-classifier32 --epochs 150 --threads 1
tunesmith audio train --data ~/.cache/tunesmith/audio/notes --out runs/notes-gan --epochs 150 --train-minutes 75 --threads 1
python scripts/bundle_simple.py runs/notes-classifier32 notes-classifier
python scripts/bundle_simple.py runs/notes-gan notes-gan
