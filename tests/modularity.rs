//! Newman's Q against hand-computed values, Louvain on Zachary's karate club and on planted
//! communities, the graph of a network's layers, and the participation coefficient.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spatial_gpu::analysis::{self, louvain, modularity, participation, WeightGraph};
use spatial_gpu::config::{Activation, Init, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::model::Params;
use spatial_gpu::split;

fn graph(n: usize, edges: &[(usize, usize)]) -> WeightGraph {
    let e: Vec<(usize, usize, f64)> = edges.iter().map(|&(i, j)| (i, j, 1.0)).collect();
    WeightGraph::from_edges(n, &e).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Two 4-cliques {0..3} and {4..7} joined by the edge 3-4.
fn two_cliques() -> WeightGraph {
    let mut e = Vec::new();
    for base in [0, 4] {
        for i in 0..4 {
            for j in i + 1..4 {
                e.push((base + i, base + j));
            }
        }
    }
    e.push((3, 4));
    graph(8, &e)
}

#[test]
fn two_cliques_joined_by_one_edge() {
    let g = two_cliques();
    // m = 6 + 6 + 1 = 13 edges, 2m = 26. Each clique: in_c = 2 * 6 = 12 (both ends), tot_c = 3 + 3 +
    // 3 + 4 = 13 (the bridge's end has degree 4). Q = 2 * (12/26 - (13/26)^2) = 24/26 - 1/2 = 11/26.
    let q = modularity(&g, &[0, 0, 0, 0, 1, 1, 1, 1]).unwrap();
    assert!(close(q, 11.0 / 26.0, 1e-12), "Q = {q}");
    // Labels are names only: any values, any order.
    assert_eq!(modularity(&g, &[7, 7, 7, 7, 2, 2, 2, 2]), Some(q));
    // Everything in one community: in = tot = 2m, Q = 1 - 1 = 0.
    assert!(close(modularity(&g, &[0; 8]).unwrap(), 0.0, 1e-12));
    // Node 3 moved to the other side: left {0,1,2} in 6, tot 9; right {3..7} in 12 + 2 = 14, tot 17.
    // Q = 6/26 - (9/26)^2 + 14/26 - (17/26)^2 = 20/26 - 370/676 = (520 - 370)/676 = 150/676.
    let q_moved = modularity(&g, &[0, 0, 0, 1, 1, 1, 1, 1]).unwrap();
    assert!(close(q_moved, 150.0 / 676.0, 1e-12), "Q = {q_moved}");
    // Louvain finds the two cliques, whatever the seed.
    for seed in 0..5 {
        let c = louvain(&g, seed);
        assert_eq!(c.labels, vec![0, 0, 0, 0, 1, 1, 1, 1], "seed {seed}");
        assert_eq!(c.count, 2);
        assert!(close(c.modularity.unwrap(), 11.0 / 26.0, 1e-12));
    }
}

#[test]
fn a_ring_of_three_arcs() {
    // 12 nodes in a ring, degree 2 each, m = 12, 2m = 24. Three arcs of 4 consecutive nodes: each has
    // 3 internal edges (in_c = 6) and tot_c = 8: Q = 3 * (6/24 - (8/24)^2) = 3/4 - 1/3 = 5/12.
    let edges: Vec<(usize, usize)> = (0..12).map(|i| (i, (i + 1) % 12)).collect();
    let g = graph(12, &edges);
    let arcs: Vec<usize> = (0..12).map(|i| i / 4).collect();
    assert!(close(modularity(&g, &arcs).unwrap(), 5.0 / 12.0, 1e-12));
    // Two arcs of 6: in_c = 10, tot_c = 12: Q = 2 * (10/24 - 1/4) = 1/3.
    let halves: Vec<usize> = (0..12).map(|i| i / 6).collect();
    assert!(close(modularity(&g, &halves).unwrap(), 1.0 / 3.0, 1e-12));
    // Arcs shifted round the ring are the same partition up to symmetry: same Q.
    let shifted: Vec<usize> = (0..12).map(|i| ((i + 1) % 12) / 4).collect();
    assert!(close(modularity(&g, &shifted).unwrap(), 5.0 / 12.0, 1e-12));
    // Alternating nodes: no edge inside a community; tot_c = 12 each: Q = -2 * (1/2)^2 = -1/2.
    let alternate: Vec<usize> = (0..12).map(|i| i % 2).collect();
    assert!(close(modularity(&g, &alternate).unwrap(), -0.5, 1e-12));
    // Scaling every weight leaves Q unchanged.
    let scaled: Vec<(usize, usize, f64)> = edges.iter().map(|&(i, j)| (i, j, 3.7)).collect();
    let gs = WeightGraph::from_edges(12, &scaled).unwrap();
    assert!(close(modularity(&gs, &arcs).unwrap(), 5.0 / 12.0, 1e-12));
    // Louvain's partition of a ring is a set of arcs (local optima of 4 or 5 arcs: Q 0.389, 0.403 or
    // 5/12 = 0.417 over seeds), never worse than two halves.
    for seed in 0..10 {
        let c = louvain(&g, seed);
        let q = c.modularity.unwrap();
        assert!(
            (1.0 / 3.0..=5.0 / 12.0 + 1e-12).contains(&q),
            "seed {seed}: {c:?}"
        );
        let boundaries = (0..12).filter(|&i| c.labels[i] != c.labels[(i + 1) % 12]).count();
        assert_eq!(boundaries, c.count, "seed {seed}: communities are arcs: {c:?}");
    }
}

#[test]
fn a_complete_graph_has_no_community_structure() {
    // K_6: m = 15, 2m = 30, every degree 5.
    let mut e = Vec::new();
    for i in 0..6 {
        for j in i + 1..6 {
            e.push((i, j));
        }
    }
    let g = graph(6, &e);
    // One block: in = tot = 30: Q = 1 - 1 = 0.
    assert!(close(modularity(&g, &[0; 6]).unwrap(), 0.0, 1e-12));
    // Two triangles: in_c = 6, tot_c = 15: Q = 2 * (6/30 - 1/4) = -1/10 (= -1 / (2 (n - 1))).
    assert!(close(modularity(&g, &[0, 0, 0, 1, 1, 1]).unwrap(), -0.1, 1e-12));
    // Three pairs: in_c = 2, tot_c = 10: Q = 3 * (2/30 - 1/9) = 1/5 - 1/3 = -2/15.
    assert!(close(
        modularity(&g, &[0, 0, 1, 1, 2, 2]).unwrap(),
        -2.0 / 15.0,
        1e-12
    ));
    // Singletons: Q = -6 * (5/30)^2 = -1/6.
    assert!(close(
        modularity(&g, &[0, 1, 2, 3, 4, 5]).unwrap(),
        -1.0 / 6.0,
        1e-12
    ));
    // Louvain cannot beat the single block.
    let c = louvain(&g, 0);
    assert!(close(c.modularity.unwrap(), 0.0, 1e-12), "{c:?}");
}

#[test]
fn q_is_undefined_without_edges_and_bad_edges_are_rejected() {
    let g = WeightGraph::from_edges(3, &[]).unwrap();
    assert_eq!(modularity(&g, &[0, 1, 2]), None);
    let c = louvain(&g, 0);
    assert_eq!((c.count, c.modularity), (3, None));

    let err = |e: &[(usize, usize, f64)]| WeightGraph::from_edges(3, e).unwrap_err().to_string();
    let m = err(&[(0, 1, 1.0), (1, 5, 1.0)]);
    assert!(m.contains("edge 1") && m.contains("out of range"), "{m}");
    let m = err(&[(2, 2, 1.0)]);
    assert!(m.contains("self-loop"), "{m}");
    let m = err(&[(0, 1, -0.5)]);
    assert!(m.contains("-0.5"), "{m}");
    let m = err(&[(0, 1, f64::NAN)]);
    assert!(m.contains("NaN"), "{m}");
}

/// Zachary's karate club (34 members, 78 friendships), 0-based as in networkx's
/// `karate_club_graph`.
#[rustfmt::skip]
const KARATE: [(usize, usize); 78] = [
    (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8), (0, 10), (0, 11), (0, 12),
    (0, 13), (0, 17), (0, 19), (0, 21), (0, 31), (1, 2), (1, 3), (1, 7), (1, 13), (1, 17), (1, 19),
    (1, 21), (1, 30), (2, 3), (2, 7), (2, 8), (2, 9), (2, 13), (2, 27), (2, 28), (2, 32), (3, 7),
    (3, 12), (3, 13), (4, 6), (4, 10), (5, 6), (5, 10), (5, 16), (6, 16), (8, 30), (8, 32), (8, 33),
    (9, 33), (13, 33), (14, 32), (14, 33), (15, 32), (15, 33), (18, 32), (18, 33), (19, 33), (20, 32),
    (20, 33), (22, 32), (22, 33), (23, 25), (23, 27), (23, 29), (23, 32), (23, 33), (24, 25), (24, 27),
    (24, 31), (25, 31), (26, 29), (26, 33), (27, 33), (28, 31), (28, 33), (29, 32), (29, 33), (30, 32),
    (30, 33), (31, 32), (31, 33), (32, 33),
];

/// The club each member joined after the fission (networkx's `club` attribute): 0 = Mr. Hi's.
const CLUB: [usize; 34] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
];

#[test]
fn karate_club_known_values() {
    let g = graph(34, &KARATE);
    assert_eq!(g.total_degree(), 156.0);
    // The two factions as the friendships place them (member 9, 1-based, with the officer): the
    // split quoted as Q = 0.3715 (Newman & Girvan 2004's leading two-way split).
    let mut factions = CLUB;
    factions[8] = 1;
    let q = modularity(&g, &factions).unwrap();
    assert!(close(q, 0.3715, 1e-3), "Q = {q}");
    // The clubs as joined (member 9 went with Mr. Hi): Q = 0.3582 (networkx 3.6 gives 0.358235).
    let q = modularity(&g, &CLUB).unwrap();
    assert!(close(q, 0.3582, 1e-3), "Q = {q}");
    // The proven optimum (Brandes et al. 2008): four communities, Q = 0.4198.
    let mut best = [0usize; 34];
    for (c, members) in [
        &[0usize, 1, 2, 3, 7, 11, 12, 13, 17, 19, 21][..],
        &[4, 5, 6, 10, 16],
        &[8, 9, 14, 15, 18, 20, 22, 26, 29, 30, 32, 33],
        &[23, 24, 25, 27, 28, 31],
    ]
    .iter()
    .enumerate()
    {
        for &i in *members {
            best[i] = c;
        }
    }
    let q_best = modularity(&g, &best).unwrap();
    assert!(close(q_best, 0.4198, 1e-3), "Q = {q_best}");
}

#[test]
fn louvain_on_the_karate_club() {
    let g = graph(34, &KARATE);
    // Louvain stops at a local optimum that depends on the visiting order. Over 200 seeds this
    // implementation gives 0.4198 (the optimum) 50 times, 0.4188 57, 0.4156 49, 0.4151 25 and values
    // in 0.392..0.398 the other 19 times; networkx 3.6.1's louvain_communities over 200 seeds: 42,
    // 62, 49, 29 and 18 in 0.385..0.398. The same spread, and never above the optimum.
    let (mut best_q, mut good): (f64, usize) = (0.0, 0);
    for seed in 0..20 {
        let c = louvain(&g, seed);
        let q = c.modularity.unwrap();
        assert!((0.38..=0.41979 + 1e-4).contains(&q), "seed {seed}: Q = {q}");
        assert_eq!(
            Some(q),
            modularity(&g, &c.labels),
            "the reported Q is the partition's"
        );
        assert!((3..=5).contains(&c.count), "seed {seed}: {} communities", c.count);
        // Labels are numbered by first member.
        assert_eq!(c.labels[0], 0);
        assert!(c.labels.iter().all(|&l| l < c.count));
        // Same seed, same partition.
        assert_eq!(c, louvain(&g, seed));
        best_q = best_q.max(q);
        good += (q >= 0.415) as usize;
    }
    assert!(close(best_q, 0.4198, 1e-4), "best Q = {best_q}");
    assert!(good >= 15, "only {good} of 20 seeds reached Q >= 0.415");
}

/// `blocks` dense blocks of `size` nodes (edge probability 0.7, weight 0.5..1.5) with sparse weak
/// noise between them (probability 0.05, weight 0..0.3).
fn planted(blocks: usize, size: usize, seed: u64) -> WeightGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = blocks * size;
    let mut e = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if i / size == j / size {
                if rng.random::<f64>() < 0.7 {
                    e.push((i, j, 0.5 + rng.random::<f64>()));
                }
            } else if rng.random::<f64>() < 0.05 {
                e.push((i, j, 0.3 * rng.random::<f64>()));
            }
        }
    }
    WeightGraph::from_edges(n, &e).unwrap()
}

#[test]
fn louvain_recovers_planted_communities() {
    for graph_seed in 0..3 {
        let g = planted(4, 12, graph_seed);
        let truth: Vec<usize> = (0..48).map(|i| i / 12).collect();
        for seed in 0..4 {
            let c = louvain(&g, seed);
            // Blocks are contiguous, labels numbered by first node: recovery means equal labels.
            assert_eq!(c.labels, truth, "graph {graph_seed}, seed {seed}");
            assert_eq!(c.count, 4);
            assert_eq!(c.modularity, modularity(&g, &truth));
        }
    }
}

fn model(sizes: &[usize], heads: usize, spatial_layers: &[usize]) -> ModelConfig {
    let m = ModelConfig {
        sizes: sizes.to_vec(),
        heads,
        tasks: Vec::new(),
        spatial_layers: spatial_layers.to_vec(),
        alpha: 1.0,
        beta: 3.0,
        transport_norm: TransportNorm::Paper,
        weight_norm: WeightNorm::L1,
        init: Init::Torch,
        activation: Activation::Sigmoid,
    };
    m.validate().unwrap();
    m
}

/// A network whose split layers are two planted modules: strong weights (+-1) inside a task, weak
/// ones (0.05) across, hidden neurons' tasks interleaved as `task_of(i) = i % 2`.
fn modular_network() -> (ModelConfig, Params) {
    let sizes = [3, 4, 6, 6, 4];
    let m = model(&sizes, 2, &[2, 3, 4]);
    let mut p = Params::init(&m, 5);
    let task = |l: usize, i: usize| if l == 4 { i / 2 } else { i % 2 };
    let mut t = p.tensors_mut();
    for l in [3usize, 4] {
        let n_in = sizes[l - 1];
        for (k, w) in t.weights[l - 1].iter_mut().enumerate() {
            let (j, i) = (k / n_in, k % n_in);
            *w = if task(l, j) == task(l - 1, i) {
                if (i + j) % 3 == 0 {
                    -1.0
                } else {
                    1.0
                }
            } else {
                0.05
            };
        }
    }
    drop(t);
    (m, p)
}

#[test]
fn the_graph_of_a_network_and_its_task_partition() {
    let (m, p) = modular_network();
    let a = split::assign(&m, &p);
    assert_eq!(a.layers, vec![2, 3, 4]);
    assert_eq!(a.of(2).unwrap(), &[0, 1, 0, 1, 0, 1]);
    let g = WeightGraph::from_model(&m, &p, &a.layers).unwrap();
    assert_eq!(g.len(), 6 + 6 + 4);
    assert_eq!(g.layers(), &[2, 3, 4]);
    assert_eq!(g.layer_nodes(3), Some(6..12));
    assert_eq!(g.layer_nodes(1), None);
    // The edges are |W_3| and |W_4|; W_2 (into the first layer of the run) is left out.
    let sum_abs = |l: usize| p.weight(l).iter().map(|w| w.abs() as f64).sum::<f64>();
    assert!(close(g.total_degree(), 2.0 * (sum_abs(3) + sum_abs(4)), 1e-9));
    // Neuron 1 of layer 3 (node 7) links neuron 4 of layer 2 (node 4) with |W_3[1, 4]|.
    let w = g.neighbours(7).find(|&(j, _)| j == 4).unwrap().1;
    assert_eq!(w, p.weight(3)[6 + 4].abs() as f64);

    let labels = analysis::task_labels(&g, &a).unwrap();
    let q_task = modularity(&g, &labels).unwrap();
    assert!(q_task > 0.4, "Q = {q_task}");
    let c = louvain(&g, 0);
    assert_eq!(c.count, 2, "{c:?}");
    // The planted modules are the task groups: Louvain finds the split.
    assert_eq!(c.labels, labels);
    assert_eq!(c.modularity, Some(q_task));

    // The cheap measures agree with their definitions.
    let cheap = analysis::cheap_measures(&m, &p).unwrap();
    assert_eq!(cheap.layers, a.layers);
    let direct = cheap.task_modularity.unwrap();
    assert!(close(direct, q_task, 1e-12), "{direct} vs {q_task}");
    assert_eq!(analysis::task_modularity(&p, &a), Some(direct));
    for (k, &l) in a.layers.iter().enumerate() {
        assert_eq!(cheap.cross_share[k], split::cross_share(&m, &p, &a, l));
    }
    assert_eq!(cheap.cross_share[2], None);
    assert!(cheap.segregation.iter().all(|s| s.is_some()));

    // Bad layer lists are errors naming them.
    let e = WeightGraph::from_model(&m, &p, &[2, 4]).unwrap_err().to_string();
    assert!(e.contains("[2, 4]"), "{e}");
    let e = WeightGraph::from_model(&m, &p, &[4, 5]).unwrap_err().to_string();
    assert!(e.contains("layer 5"), "{e}");
    let other = Params::zeros(&[3, 4, 6, 6, 2]);
    let e = WeightGraph::from_model(&m, &other, &[2, 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not fit"), "{e}");
}

#[test]
fn participation_on_hand_examples() {
    // Node 0 links only group 0 (nodes 1, 2): P = 0. Node 3 links 1 (group 0) and 4 (group 1)
    // with equal weight: P = 1 - 2 (1/2)^2 = 1/2. Node 5 links groups 0, 1, 2 with 1, 1, 2:
    // P = 1 - (1/16 + 1/16 + 1/4) = 5/8. Node 7 has no edge: no coefficient.
    let e = [
        (0, 1, 1.0),
        (0, 2, 3.0),
        (3, 1, 2.0),
        (3, 4, 2.0),
        (5, 1, 1.0),
        (5, 4, 1.0),
        (5, 6, 2.0),
    ];
    let g = WeightGraph::from_edges(8, &e).unwrap();
    let groups = [0, 0, 0, 1, 1, 2, 2, 2];
    let p = participation(&g, &groups, 3);
    assert_eq!(p[0], Some(0.0));
    assert!(close(p[3].unwrap(), 0.5, 1e-12));
    assert!(close(p[5].unwrap(), 5.0 / 8.0, 1e-12));
    assert_eq!(p[7], None);
}

#[test]
fn participation_per_layer() {
    // Layers [1, 2] of a 2-2-2 network with two tasks. Layer-1 neuron 0 sends |w| 1 and 1 to the two
    // output neurons (tasks 0 and 1): P = 1/2, normalised 1. Neuron 1 sends 3 and 1: P = 1 - 9/16 -
    // 1/16 = 3/8, normalised 3/4. Output neuron 0 receives 1 (task 0) and 3 (task 1): P = 3/8; output
    // neuron 1 receives 1 and 1: P = 1/2.
    let m = model(&[1, 2, 2], 2, &[1, 2]);
    let mut p = Params::zeros(&m.sizes);
    p.tensors_mut().weights[1].copy_from_slice(&[1.0, 3.0, -1.0, 1.0]);
    let g = WeightGraph::from_model(&m, &p, &[1, 2]).unwrap();
    let tasks = [0, 1, 0, 1];
    let per_layer = analysis::participation_by_layer(&g, &tasks, 2);
    assert_eq!(per_layer.len(), 2);
    for (lp, layer) in per_layer.iter().zip([1, 2]) {
        assert_eq!((lp.layer, lp.neurons, lp.connected), (layer, 2, 2));
        assert!(close(lp.mean.unwrap(), (0.5 + 0.375) / 2.0, 1e-12));
        assert!(close(lp.mean_normalised.unwrap(), (1.0 + 0.75) / 2.0, 1e-12));
        assert_eq!(lp.above_half, Some(1.0));
    }
    // A neuron with no |w| has no coefficient and does not count in the means.
    p.tensors_mut().weights[1].copy_from_slice(&[1.0, 0.0, 1.0, 0.0]);
    let g = WeightGraph::from_model(&m, &p, &[1, 2]).unwrap();
    let lp = &analysis::participation_by_layer(&g, &tasks, 2)[0];
    assert_eq!((lp.connected, lp.mean, lp.above_half), (1, Some(0.5), Some(1.0)));
}
