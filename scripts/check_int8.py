"""Teacher-forced NLL of an event-token model's test tunes, one token at a time through the
sampler's ``step``, with float32 weights and with the int8 weights the sampler reads — the
check that quantized sampling does not change the model (the figure in the model card).

    python scripts/check_int8.py folk [--tokens 10000]
"""

from __future__ import annotations

import argparse


def main() -> None:
    import torch

    from tunesmith.generate.api import MusicModel, load_model
    from tunesmith.generate.sampler import sampling_mode
    from tunesmith.music.dataset import open_dataset
    from tunesmith.train.data import event_corpus

    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, default=10000, help="score test tunes until this many tokens")
    a = ap.parse_args()
    mm = load_model(a.model)
    if not isinstance(mm, MusicModel) or not hasattr(mm.model, "int8_sampling"):
        raise SystemExit(f"check_int8.py: {a.model} is not an event-token model with int8 sampling")
    m = mm.model
    corpus = event_corpus(open_dataset(mm.config["dataset"]["name"], progress=False), mm.tokenizer, progress=False,
                          styles=mm.styles or None)
    block = getattr(m.config, "block_size", 1024)
    out = {}
    for int8 in (False, True):
        m.int8_sampling = int8
        total, n = 0.0, 0
        with sampling_mode(), torch.inference_mode():
            for seq in corpus.splits["test"]:
                if n >= a.tokens:
                    break
                s = [int(x) for x in seq[:block]]
                logits, state = m.step(torch.tensor([s[:1]]), None)
                for t in s[1:]:
                    total -= float(torch.log_softmax(logits[0, -1].float(), -1)[t])
                    n += 1
                    logits, state = m.step(torch.tensor([[t]]), state)
        out[int8] = (total / n, n)
    print(f"{a.model}: test NLL float32 {out[False][0]:.5f}, int8 {out[True][0]:.5f} nats/token "
          f"over {out[True][1]:,} tokens")


if __name__ == "__main__":
    main()
