#!/usr/bin/env python3
"""gen_pref_ref.py - PyTorch oracle for lathe's preference objectives (DPO sigmoid, DPO IPO, ORPO).

Loads the Llama fixture model (tests/data/models/llama_gqa) with torch_ref.py's model code, wraps
every projection with LoRA r=4, alpha=8 (A kaiming-uniform, B ~ N(0, 0.02) so that the policy
differs from the reference), and for one batch of 2 preference pairs (rows 0..1 chosen, 2..3
rejected; labels -100 on prompt and padding positions) computes, per objective, the loss and the
gradient of every LoRA tensor. Formulas (TRL):
  sequence log-prob S = sum of log p(label) over labelled tokens, n = their count
  reference = the same model with the adapters off (scaling 0)
  DPO sigmoid: d = (Sc - Rc) - (Sr - Rr);  loss = mean(-logsigmoid(beta d))
  DPO IPO:     d as above on per-token averages (S/n);  loss = mean((d - 1/(2 beta))^2)
  ORPO:        l = S/n;  log_odds = (lc - lr) - (log1p(-exp(lc)) - log1p(-exp(lr)))
               loss = (sum over chosen tokens of -log p) / (chosen tokens) - beta mean(logsigmoid(log_odds))
  rewards: DPO beta (S - R) per side; ORPO beta l per side.
beta = 0.1. Writes tests/data/pref/pref_ref.safetensors:
  input_ids, labels I32 [4, T]; lora.<PEFT name>; ref_logps F32 [4]; policy_logps F32 [4];
  <obj>.loss F32 [1]; <obj>.rewards F32 [2, 2] (chosen, rejected per pair);
  <obj>.grad.<PEFT name>   for obj in dpo, ipo, orpo.
Run: /usr/bin/python3 tests/data/pref/gen_pref_ref.py
"""
import importlib.util
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
ref = os.environ.get("TORCH_REF") or os.path.join(here, "../../../../shared/tools/torch_ref.py")
os.environ["TORCH_REF_REEXEC"] = "1"
spec = importlib.util.spec_from_file_location("torch_ref", ref)
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)
torch, F, np = tr.torch, tr.F, tr.np
nn = torch.nn

BETA = 0.1
P, T = 2, 10


def main():
    model = tr.load_folder(os.path.join(here, "../models/llama_gqa"), torch.float64)
    torch.manual_seed(7)
    lora = tr.apply_lora(model, 4, 8.0)
    for _, lw in lora:
        nn.init.normal_(lw.lora_B, 0.0, 0.02)
    V = model.c["vocab"]
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(3, V, (2 * P, T), generator=g)
    labels = torch.full((2 * P, T), -100, dtype=torch.long)
    # prompts of 3 and 4 tokens shared by chosen and rejected; responses of different lengths
    plen = [3, 4]
    rlen = [[5, 4], [3, 6]]  # [pair][chosen, rejected]
    for i in range(P):
        for side in range(2):
            row = side * P + i
            ids[row, :plen[i]] = ids[i, :plen[i]]  # same prompt
            end = plen[i] + rlen[i][side]
            # label of position t is the token at t+1: the response tokens are predicted from
            # positions plen-1 .. end-2
            labels[row, plen[i] - 1:end - 1] = ids[row, plen[i]:end]
    params = [p for _, lw in lora for p in (lw.lora_A, lw.lora_B)]
    names = []
    for path, lw in lora:
        na, nb = tr.peft_names(path)
        names += [na, nb]

    def seq_logps(scaling_on):
        saved = [lw.scaling for _, lw in lora]
        if not scaling_on:
            for _, lw in lora:
                lw.scaling = 0.0
        logits = model(ids)
        for (_, lw), s in zip(lora, saved):
            lw.scaling = s
        lp = F.log_softmax(logits, dim=-1)
        mask = labels != -100
        tok = torch.gather(lp, 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
        return tok.sum(1), mask.sum(1).to(lp.dtype)

    with torch.no_grad():
        R, n = seq_logps(False)
    out = {"input_ids": ids.numpy().astype(np.int32), "labels": labels.numpy().astype(np.int32),
           "ref_logps": R.numpy().astype(np.float32)}
    for name, p in zip(names, params):
        out["lora." + name] = p.detach().numpy().astype(np.float32)
    for obj in ("dpo", "ipo", "orpo"):
        for p in params:
            p.grad = None
        S, n = seq_logps(True)
        Sc, Sr, Rc, Rr, nc, nr = S[:P], S[P:], R[:P], R[P:], n[:P], n[P:]
        if obj == "dpo":
            d = (Sc - Rc) - (Sr - Rr)
            loss = -F.logsigmoid(BETA * d).mean()
            rw = torch.stack([BETA * (Sc - Rc), BETA * (Sr - Rr)], 1)
        elif obj == "ipo":
            d = (Sc / nc - Rc / nc) - (Sr / nr - Rr / nr)
            loss = ((d - 1 / (2 * BETA)) ** 2).mean()
            rw = torch.stack([BETA * (Sc - Rc), BETA * (Sr - Rr)], 1)
        else:
            lc, lr = Sc / nc, Sr / nr
            lo = (lc - lr) - (torch.log1p(-torch.exp(lc)) - torch.log1p(-torch.exp(lr)))
            nll = -Sc.sum() / nc.sum()
            loss = nll - BETA * F.logsigmoid(lo).mean()
            rw = torch.stack([BETA * lc, BETA * lr], 1)
        loss.backward()
        out[obj + ".loss"] = np.array([loss.item()], np.float32)
        out[obj + ".rewards"] = rw.detach().numpy().astype(np.float32)
        for name, p in zip(names, params):
            out[obj + ".grad." + name] = p.grad.numpy().astype(np.float32)
        print("%s loss %.6f rewards %s" % (obj, loss.item(), rw.detach().numpy().round(5).tolist()))
    out["policy_logps"] = S.detach().numpy().astype(np.float32)
    tr.save_safetensors(os.path.join(here, "pref_ref.safetensors"), out,
                        {"beta": str(BETA), "lora_r": "4", "lora_alpha": "8"})


if __name__ == "__main__":
    main()
