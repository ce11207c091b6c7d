"""Compares `split --method weights` (split.json) with `--method activations` (split-activations.json)
over the runs of a grid directory; prints a Markdown table, mean +- sample std over seeds per cell.
Usage: python3 docs/results/split_methods.py runs/grid50   (needs numpy and safetensors)"""
import json, glob, os, statistics as st, sys
from safetensors.numpy import load_file
root = sys.argv[1]
cells = {}
for d in sorted(glob.glob(f"{root}/*-seed*")):
    name = os.path.basename(d)
    cell = name.rsplit("-seed", 1)[0]
    w = json.load(open(f"{d}/split.json"))
    a = json.load(open(f"{d}/split-activations.json"))
    gw, ga = w["assignment"]["groups"], a["assignment"]["groups"]
    layers = w["assignment"]["layers"]
    same = sum(x == y for k in range(len(layers) - 1) for x, y in zip(gw[k], ga[k]))
    total = sum(len(gw[k]) for k in range(len(layers) - 1))
    # The same, over the neurons Figure 1 draws (summed |input w| > 0.1): the spatial networks'
    # thinned-out neurons have no drive and no outgoing mass, so either method's choice is arbitrary.
    t = load_file(f"{d}/model.safetensors")
    same_drawn = drawn = 0
    for k, l in enumerate(layers[:-1]):
        inp = abs(t[f"layer{l}.weight"]).sum(axis=1)
        for i, (x, y) in enumerate(zip(gw[k], ga[k])):
            if inp[i] > 0.1:
                drawn += 1
                same_drawn += x == y
    row = dict(
        same_drawn=same_drawn / max(drawn, 1),
        wdrop=w["drop"], adrop=a["drop"], same=same / total,
        wq=w["modularity"]["task_modularity"], aq=a["modularity"]["task_modularity"],
        wsel=w["modularity"]["selectivity"]["agreement"], asel=a["modularity"]["selectivity"]["agreement"],
    )
    cells.setdefault(cell, []).append(row)
def ms(v):
    return f"{st.mean(v):.3f} ± {st.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
keys = [("wdrop", "drop, weights"), ("adrop", "drop, activations"), ("same", "hidden neurons given the same task by both"),
        ("same_drawn", "the same, of the neurons Figure 1 draws"),
        ("wq", "Q (task partition), weights"), ("aq", "Q (task partition), activations"),
        ("wsel", "ablation agreement, weights"), ("asel", "ablation agreement, activations")]
names = list(cells)
print("| | " + " | ".join(n.replace("-", " ") for n in names) + " |")
print("| --- " * (len(names) + 1) + "|")
for k, label in keys:
    print(f"| {label} | " + " | ".join(ms([r[k] for r in cells[n]]) for n in names) + " |")
