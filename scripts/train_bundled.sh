#!/usr/bin/env bash
# How the bundled models were trained (on 2 CPU cores), then copied into the package.
set -euo pipefail
# issue 12: the chorale model is an LSTM over SATB frame tokens (the REMI LSTM it replaced is in git history)
# the chorale model: 140 minutes on one thread (the cosine schedule reaches its floor; valid NLL 0.350)
tunesmith train --family lstm --tokens satb --data bach-chorales --out runs/chorale-satb-long --size small --dropout 0.3 \
    --epochs 600 --patience 60 --augment-transpose --seq-len 768 --train-minutes 140 --checkpoint-every 50 --seed 1 --threads 1 --quiet
# then a warm restart: 115 more minutes from its best checkpoint at peak lr 6e-4, annealed again (valid NLL 0.328);
# the run was stopped by Ctrl-C past its budget and its summary.json written from metrics.json
tunesmith train --family lstm --tokens satb --from runs/chorale-satb-long/best --data bach-chorales --out runs/chorale-satb-ft \
    --epochs 600 --patience 60 --augment-transpose --seq-len 768 --lr 6e-4 --train-minutes 115 --checkpoint-every 50 --seed 2 --threads 1 --quiet
python benchmarks/quality.py --chorale-model runs/chorale-satb-ft \
    --only "bach-chorales (rules strict),bach-chorales (rules off),harmonized held-out sopranos (rules strict)"
# issue 18: the folk model has style tokens (collection, Essen region); 50 minutes, then resumed to 95 in all
tunesmith train --family transformer --data folk --styles --out runs/folk-style --size small --epochs 12 \
    --patience 3 --augment-transpose --train-minutes 50 --seed 1 --threads 1 --quiet
tunesmith train --family transformer --data folk --styles --out runs/folk-style --size small --epochs 12 \
    --patience 3 --augment-transpose --train-minutes 95 --seed 1 --threads 1 --quiet --resume
python benchmarks/style.py --model runs/folk-style/best -n 16
python scripts/bundle_model.py runs/chorale-satb-ft bach-chorales --data bach-chorales --threads 1 \
    --description "Four-voice chorales (SATB) in the style of J.S. Bach's chorale harmonisations, sampled voice by voice under the rules of four-part writing. Trained 140 minutes (runs/chorale-satb-long), then fine-tuned from its best checkpoint for 115 more with the learning rate raised to 6e-4 and annealed again (a warm restart): 255 minutes on one CPU thread in all." \
    --quality "bach-chorales (rules strict)" "bach-chorales (rules off)" "harmonized held-out sopranos (rules strict)"
python scripts/bundle_model.py runs/folk-style folk --data folk --playback-tempo 120 \
    --description "Folk melodies from the Essen, O'Neill (1850) and Ryan's Mammoth collections, with style control: generate --style COLLECTION|REGION."
# its default top-p, chosen on crops of the training tunes (writes sampling.top_p into its config.json)
python scripts/choose_top_p.py folk --write
# issue 5: the chorale CNN (Coconet) and the piano-roll GAN
tunesmith train --family cnn --data bach-chorales --out runs/chorale-cnn --epochs 24 --steps-per-epoch 100 \
    --train-minutes 42 --threads 1 --checkpoint-every 100 --quiet
tunesmith train --family gan --data bach-chorales --out runs/chorale-gan --epochs 15 --steps-per-epoch 100 \
    --train-minutes 25 --threads 1 --quiet
python scripts/bundle_simple.py runs/chorale-cnn chorale-cnn
python scripts/bundle_simple.py runs/chorale-gan chorale-gan
# issue 6: the note data set and the WaveGAN baseline (notes-wavegan)
tunesmith audio dataset --out ~/.cache/tunesmith/audio/notes
tunesmith audio train --family wavegan --width 8 --batch-size 16 --data ~/.cache/tunesmith/audio/notes \
    --out runs/notes-wavegan --epochs 150 --steps-per-epoch 25 --train-minutes 75 --threads 1
python scripts/bundle_simple.py runs/notes-wavegan notes-wavegan
# issue 13: the note classifier v2 and the DDSP GAN (notes-gan)
tunesmith audio train-classifier --data ~/.cache/tunesmith/audio/notes --out runs/notes-classifier-s8 --epochs 150 \
    --segments 8 --family-weight 1.0 --threads 1
python scripts/bundle_simple.py runs/notes-classifier-s8 notes-classifier
tunesmith audio train --data ~/.cache/tunesmith/audio/notes --out runs/notes-ddsp --epochs 1000 --steps-per-epoch 100 \
    --warmup-steps 300 --train-minutes 75 --checkpoint-every 50 --threads 2
python scripts/choose_latent_scale.py runs/notes-ddsp --write
python scripts/bundle_simple.py runs/notes-ddsp notes-gan
