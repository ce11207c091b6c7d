//! The greedy split on hand-built networks whose correct assignment is known, the per-task masks,
//! switched-off evaluation, the cross-task share and the segregation score.

use spatial_gpu::analysis;
use spatial_gpu::backend::Backend;
use spatial_gpu::config::{Activation, Init, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::CpuBackend;
use spatial_gpu::data::batches::TestSet;
use spatial_gpu::model::{Params, TrainState};
use spatial_gpu::split::{self, Assignment, SplitOptions};

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

/// Parameters with `W_l` set to `weights[l]` (row-major `(N_l, N_{l-1})`) where given, the rest zero.
fn params_with(sizes: &[usize], weights: &[(usize, Vec<f32>)]) -> Params {
    let mut p = Params::zeros(sizes);
    let mut t = p.tensors_mut();
    for (l, w) in weights {
        assert_eq!(w.len(), sizes[*l] * sizes[l - 1], "W_{l} shape");
        t.weights[l - 1].copy_from_slice(w);
    }
    drop(t);
    p
}

fn backend(m: &ModelConfig, params: Params) -> CpuBackend {
    let train = TrainConfig {
        batch_size: 8,
        ..TrainConfig::default()
    };
    CpuBackend::new(m.clone(), train, TrainState::new(params)).unwrap()
}

#[test]
fn split_layers_are_the_spatial_run_ending_at_the_output() {
    assert_eq!(split::split_layers(&ModelConfig::paper(784)), vec![3, 4, 5]);
    assert_eq!(
        split::split_layers(&model(&[2, 3, 3, 3, 4], 2, &[2, 3, 4])),
        vec![2, 3, 4]
    );
    // No spatial layers (no valid configuration has none, but the split still works): only the
    // output layer (its heads) is split.
    let none = ModelConfig {
        spatial_layers: vec![],
        ..model(&[2, 3, 3, 4], 2, &[3])
    };
    assert_eq!(split::split_layers(&none), vec![3]);
    // A gap: layers before it stay shared.
    assert_eq!(
        split::split_layers(&model(&[2, 3, 3, 3, 4], 2, &[1, 2, 4])),
        vec![4]
    );
}

/// Two tasks, three split layers: layer 3's neurons feed one head each, layer 2's neurons feed
/// layer-3 neurons of one task each (through a permutation), and the assignment follows.
#[test]
fn greedy_assignment_follows_the_strongest_outgoing_mass() {
    let sizes = [2, 3, 4, 4, 4];
    let m = model(&sizes, 2, &[2, 3, 4]);
    // Output 0,1 = task 0, output 2,3 = task 1. W_4[j, i]: layer-3 neuron i -> output j.
    // Layer-3 neurons 0 and 3 feed task 1 (more mass there), neurons 1 and 2 task 0. Negative weights
    // count by their absolute value.
    #[rustfmt::skip]
    let w4 = vec![
        0.1, 0.9, -0.5, 0.0,
        0.1, 0.2, 0.4, 0.1,
        -0.8, 0.1, 0.2, 0.5,
        0.3, 0.3, 0.1, -0.5,
    ];
    // Layer 3's tasks: [1, 0, 0, 1]. W_3[j, i]: layer-2 neuron i -> layer-3 neuron j.
    // Layer-2 neuron 0: to layer-3 neurons 0,3 (task 1) 1.0+1.0, to 1,2 (task 0) 0.5+0.4 -> task 1.
    // Neuron 1: task 0 gets 2.0, task 1 gets 0.2 -> 0. Neuron 2: task 0 gets 0.7, task 1 0.69 -> 0.
    // Neuron 3: all zero -> a tie -> task 0.
    #[rustfmt::skip]
    let w3 = vec![
        1.0, 0.1, 0.3, 0.0,
        0.5, 1.0, 0.3, 0.0,
        -0.4, -1.0, 0.4, 0.0,
        1.0, 0.1, -0.39, 0.0,
    ];
    let p = params_with(&sizes, &[(3, w3), (4, w4)]);
    let a = split::assign(&m, &p);
    assert_eq!(a.tasks, 2);
    assert_eq!(a.layers, vec![2, 3, 4]);
    assert_eq!(a.of(4).unwrap(), &[0, 0, 1, 1]);
    assert_eq!(a.of(3).unwrap(), &[1, 0, 0, 1]);
    assert_eq!(a.of(2).unwrap(), &[1, 0, 0, 0]);
    assert_eq!(a.of(1), None, "layer 1 is shared");
    assert_eq!(a.counts(3).unwrap(), vec![2, 2]);
    assert_eq!(a.counts(2).unwrap(), vec![3, 1]);
}

#[test]
fn ties_go_to_the_lower_task() {
    // M = 3: outputs 0,1 task 0; 2,3 task 1; 4,5 task 2. One split hidden layer (layer 2) of 5 neurons.
    let sizes = [2, 2, 5, 6];
    let m = model(&sizes, 3, &[2, 3]);
    // Columns are layer-2 neurons. Neuron 0: equal mass to all three tasks -> 0. Neuron 1: tasks 1 and
    // 2 tie above task 0 -> 1. Neuron 2: tasks 0 and 2 tie above 1 -> 0. Neuron 3: all zero -> 0.
    // Neuron 4: task 2 strictly largest -> 2.
    #[rustfmt::skip]
    let w = vec![
        // n0    n1    n2    n3   n4
        0.5,  0.1,  0.25, 0.0, 0.1, // out 0 (task 0)
        -0.5, 0.0,  0.25, 0.0, 0.1, // out 1 (task 0)
        0.25, 0.3,  0.1,  0.0, 0.0, // out 2 (task 1)
        0.75, -0.3, 0.1,  0.0, 0.2, // out 3 (task 1)
        1.0,  0.6,  0.5,  0.0, 0.3, // out 4 (task 2)
        0.0,  0.0,  0.0,  0.0, 0.3, // out 5 (task 2)
    ];
    let p = params_with(&sizes, &[(3, w)]);
    let a = split::assign(&m, &p);
    assert_eq!(a.of(3).unwrap(), &[0, 0, 1, 1, 2, 2]);
    assert_eq!(a.of(2).unwrap(), &[0, 1, 0, 0, 2]);
}

#[test]
fn three_tasks_propagate_back_through_two_layers() {
    // Block structure with a permutation: layer-3 neuron i feeds task perm3[i]; layer-2 neuron i feeds
    // the layer-3 neurons of task perm2[i] only.
    let sizes = [3, 4, 6, 6, 9];
    let m = model(&sizes, 3, &[2, 3, 4]);
    let perm3 = [2, 0, 1, 1, 0, 2];
    let perm2 = [1, 1, 2, 0, 0, 2];
    let mut w4 = vec![0.0; 9 * 6];
    for j in 0..9 {
        for i in 0..6 {
            if j / 3 == perm3[i] {
                w4[j * 6 + i] = 0.1 + 0.01 * (i + j) as f32;
            } else {
                w4[j * 6 + i] = 0.02; // weaker cross-task connections everywhere
            }
        }
    }
    let mut w3 = vec![0.0; 6 * 6];
    for j in 0..6 {
        for i in 0..6 {
            w3[j * 6 + i] = if perm3[j] == perm2[i] { -0.3 } else { 0.05 };
        }
    }
    let p = params_with(&sizes, &[(3, w3), (4, w4)]);
    let a = split::assign(&m, &p);
    assert_eq!(a.of(4).unwrap(), &[0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(a.of(3).unwrap(), &perm3);
    assert_eq!(a.of(2).unwrap(), &perm2);
    assert_eq!(a.counts(3).unwrap(), vec![2, 2, 2]);

    // The masks switch off exactly the other tasks' neurons of the split layers, nothing else.
    for t in 0..3 {
        let keep = split::task_mask(&m, &a, t);
        assert_eq!(keep.len(), sizes.len());
        for (l, k) in keep.iter().enumerate() {
            assert_eq!(k.len(), sizes[l]);
            for (i, &v) in k.iter().enumerate() {
                let want = match a.of(l) {
                    Some(g) => (g[i] == t) as u8 as f32,
                    None => 1.0,
                };
                assert_eq!(v, want, "task {t} layer {l} neuron {i}");
            }
        }
    }
}

/// A random-looking but fixed network of the given sizes (no training needed).
fn random_params(m: &ModelConfig, seed: u64) -> Params {
    Params::init(m, seed)
}

fn inputs(count: usize, n0: usize) -> Vec<f32> {
    (0..count * n0).map(|k| ((k * 37 % 101) as f32) / 101.0).collect()
}

#[test]
fn a_switched_off_neuron_changes_nothing_downstream() {
    let sizes = [5, 6, 7, 8, 6];
    let m = model(&sizes, 2, &[2, 3, 4]);
    let p = random_params(&m, 11);
    let a = split::assign(&m, &p);
    let x = inputs(4, 5);
    for t in 0..2 {
        let keep = split::task_mask(&m, &a, t);
        let mut be = backend(&m, p.clone());
        let base = be.logits(&x, 4, Some(&keep)).unwrap();
        let full = be.logits(&x, 4, None).unwrap();
        // Rewrite the incoming weights and the bias of every switched-off neuron of layers 2 and 3.
        let mut changed = p.clone();
        let mut touched = 0;
        {
            let tm = changed.tensors_mut();
            let (mut weights, mut biases) = (tm.weights, tm.biases);
            for l in [2usize, 3] {
                let g = a.of(l).unwrap();
                let n_in = sizes[l - 1];
                for (j, &task) in g.iter().enumerate() {
                    if task != t {
                        touched += 1;
                        for w in &mut weights[l - 1][j * n_in..(j + 1) * n_in] {
                            *w = 5.0 - *w * 3.0;
                        }
                        biases[l - 1][j] += 7.0;
                    }
                }
            }
        }
        assert!(touched > 0, "the test needs switched-off neurons (task {t})");
        let mut be2 = backend(&m, changed);
        assert_eq!(
            be2.logits(&x, 4, Some(&keep)).unwrap(),
            base,
            "task {t}: masked logits moved"
        );
        assert_ne!(
            be2.logits(&x, 4, None).unwrap(),
            full,
            "the change must matter unmasked"
        );
        // Output neurons of the other tasks are switched off too: their logits are 0.
        for row in base.chunks_exact(6) {
            for (j, &z) in row.iter().enumerate() {
                if j / 3 != t {
                    assert_eq!(z, 0.0);
                }
            }
        }
    }
}

/// A test set with `heads` label columns, labels from `label_of(example, head)`.
fn test_set(
    x: Vec<f32>,
    count: usize,
    n0: usize,
    heads: usize,
    label_of: impl Fn(usize, usize) -> i32,
) -> TestSet {
    let labels = (0..count)
        .flat_map(|r| (0..heads).map(move |h| (r, h)))
        .map(|(r, h)| label_of(r, h))
        .collect();
    TestSet {
        inputs: x,
        labels,
        len: count,
        input_dim: n0,
    }
}

#[test]
fn a_block_diagonal_network_splits_without_loss() {
    // Cross-task weights of the split layers are exactly zero, so each subnetwork computes its head
    // exactly as the full network does: split accuracy = full accuracy, cross share 0.
    let sizes = [4, 6, 6, 6, 9];
    let m = model(&sizes, 3, &[3, 4]);
    let mut p = random_params(&m, 5);
    let g3 = [0usize, 1, 2, 2, 1, 0];
    {
        let mut t = p.tensors_mut();
        for (j, row) in t.weights[3].chunks_exact_mut(6).enumerate() {
            for (w, &task) in row.iter_mut().zip(&g3) {
                if j / 3 != task {
                    *w = 0.0;
                } else {
                    *w += 0.5f32.copysign(*w);
                }
            }
        }
    }
    let a = split::assign(&m, &p);
    assert_eq!(a.layers, vec![3, 4]);
    assert_eq!(a.of(3).unwrap(), &g3);
    assert_eq!(split::cross_share(&m, &p, &a, 3), Some(0.0));
    assert_eq!(
        split::cross_share(&m, &p, &a, 4),
        None,
        "the output layer has no outgoing weights"
    );

    let count = 40;
    let x = inputs(count, 4);
    let mut be = backend(&m, p.clone());
    let full_logits = be.logits(&x, count, None).unwrap();
    // Labels: half of each head's examples labelled with the full network's prediction, so the
    // accuracies are known (0.5 or more) and not trivially 1.
    let argmax = |r: usize, h: usize| {
        let z = &full_logits[r * 9 + 3 * h..][..3];
        (0..3).fold(0, |b, k| if z[k] > z[b] { k } else { b }) as i32
    };
    let test = test_set(x, count, 4, 3, |r, h| {
        if r % 2 == 0 {
            argmax(r, h)
        } else {
            (argmax(r, h) + 1) % 3
        }
    });
    let (full, split_acc) = split::evaluate_split(&mut be, &test, &a).unwrap();
    assert_eq!(full, vec![0.5, 0.5, 0.5]);
    assert_eq!(split_acc, full);

    let report = split::analyse(
        &mut be,
        &test,
        1,
        SplitOptions {
            permutations: 50,
            seed: 3,
            ..SplitOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.tasks, 3);
    assert!(report.drop.abs() < 1e-12);
    assert_eq!(report.task_split_accuracy, report.task_accuracy);
    assert_eq!(report.layers.len(), 2);
    assert_eq!(report.layers[0].neurons_per_task, vec![2, 2, 2]);
    assert_eq!(report.layers[1].neurons_per_task, vec![3, 3, 3]);
    let text = split::format_report(&report);
    assert!(text.contains("task 2") && text.contains("segregation"), "{text}");
    // No |w| crosses tasks between the split layers: Q of the task partition is the largest it can
    // be for these group sizes, and every hidden split neuron's participation is 0.
    let modularity = report.modularity.as_ref().expect("split measures modularity");
    let q = modularity.task_modularity.expect("the split layers have weights");
    assert_eq!(
        Some(q),
        analysis::task_modularity(&p, &a),
        "both routes to Q agree"
    );
    assert!(q > 0.3, "{q}");
    assert_eq!(modularity.participation[0].layer, 3);
    assert_eq!(modularity.participation[0].mean, Some(0.0));
    assert!(modularity.selectivity.is_some(), "split runs the ablation");
    assert!(modularity.detected_communities >= 1);
    assert!(
        text.contains("Q of the task partition (3 tasks)") && text.contains("Louvain"),
        "{text}"
    );
    let json = serde_json::to_string(&report).unwrap();
    let back: split::SplitReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.assignment, report.assignment);
    let back_m = back.modularity.expect("the measures are written");
    assert!((back_m.task_modularity.unwrap() - q).abs() < 1e-12);
    assert_eq!(back_m.participation.len(), modularity.participation.len());
    // A split.json written before the measures existed still reads back, without them.
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    old.as_object_mut().unwrap().remove("modularity");
    let old: split::SplitReport = serde_json::from_value(old).unwrap();
    assert_eq!(old.modularity, None);
    assert_eq!(old.drop, report.drop);
}

#[test]
fn cutting_a_task_dependency_lowers_its_split_accuracy() {
    // Task 1's output depends only on a hidden neuron that the split gives to task 0 (its mass to task
    // 0 is larger), so task 1's subnetwork loses its only signal.
    let sizes = [1, 1, 2, 4];
    let m = model(&sizes, 2, &[2, 3]);
    // Layer 1: one neuron, sigmoid(10 x - 5). Layer 2: neuron 0 = sigmoid(10 a - 5), neuron 1 = 0.5.
    let mut p = params_with(&sizes, &[(1, vec![10.0]), (2, vec![10.0, 0.0])]);
    {
        let mut t = p.tensors_mut();
        t.biases[0][0] = -5.0;
        t.biases[1][0] = -5.0;
        // W_3 (4 x 2): neuron 0 -> output 0 (+4), output 1 (-4), output 2 (+3), output 3 (-3);
        // its mass to task 0 is 8, to task 1 is 6: it goes to task 0. Neuron 1 has tiny weights to task 1.
        t.weights[2].copy_from_slice(&[4.0, 0.0, -4.0, 0.0, 3.0, 0.01, -3.0, 0.01]);
        t.biases[2].copy_from_slice(&[-2.0, 2.0, -1.5, 1.5]);
    }
    let a = split::assign(&m, &p);
    assert_eq!(a.of(2).unwrap(), &[0, 1]);
    // cross share: W_3 entries whose ends differ: neuron 0 -> outputs 2,3 (6.0), neuron 1 -> outputs
    // 0,1 (0.0); total 14.02.
    let share = split::cross_share(&m, &p, &a, 2).unwrap();
    assert!((share - 6.0 / 14.02).abs() < 1e-6, "{share}");

    // x = 1: hidden ~1, output 0 wins on head 0 and output 2 on head 1; x = 0: the other class.
    let x = vec![1.0, 0.0, 1.0, 0.0];
    let test = test_set(x, 4, 1, 2, |r, _| if r % 2 == 0 { 0 } else { 1 });
    let mut be = backend(&m, p);
    let (full, split_acc) = split::evaluate_split(&mut be, &test, &a).unwrap();
    assert_eq!(full, vec![1.0, 1.0]);
    assert_eq!(split_acc[0], 1.0);
    // Without neuron 0, head 1's logits no longer depend on x: it predicts one class for all.
    assert_eq!(split_acc[1], 0.5);
}

#[test]
fn evaluate_split_rejects_a_test_set_with_other_heads() {
    let sizes = [2, 3, 4];
    let m = model(&sizes, 2, &[2]);
    let p = random_params(&m, 1);
    let a = split::assign(&m, &p);
    let test = test_set(inputs(3, 2), 3, 2, 1, |_, _| 0);
    let err = split::evaluate_split(&mut backend(&m, p), &test, &a).unwrap_err();
    assert!(err.to_string().contains("2 heads"), "{err}");
}

#[test]
fn segregation_of_two_clusters_is_low_and_significant() {
    // 10 neurons of task 0 around (-5, 0), 10 of task 1 around (5, 0).
    let mut pos = Vec::new();
    let mut tasks = Vec::new();
    for k in 0..20 {
        let c = if k < 10 { -5.0 } else { 5.0 };
        pos.extend([c + (k % 3) as f32 * 0.1, (k % 5) as f32 * 0.1]);
        tasks.push(usize::from(k >= 10));
    }
    let s = split::segregation(&pos, &tasks, 200, 7).unwrap();
    assert!(s.score < 0.1, "{s:?}");
    assert!(s.same_task_distance < s.cross_task_distance);
    assert_eq!(s.p_value, 1.0 / 201.0, "no permutation is as segregated");
    assert_eq!(s.permutations, 200);
    // Same seed, same answer; the p-value is a permutation count, so it is a multiple of 1/201.
    assert_eq!(split::segregation(&pos, &tasks, 200, 7).unwrap(), s);

    // Labels alternating along a line: not segregated, a large p-value.
    let line: Vec<f32> = (0..20).flat_map(|k| [k as f32, 0.0]).collect();
    let alt: Vec<usize> = (0..20).map(|k| k % 2).collect();
    let s = split::segregation(&line, &alt, 200, 7).unwrap();
    assert!(s.score > 0.95, "{s:?}");
    assert!(s.p_value > 0.2, "{s:?}");
}

#[test]
fn segregation_is_exact_on_a_tiny_case_and_undefined_for_one_task() {
    // Points 0, 1 (task 0) and 3 (task 1) on a line: same pairs {0-1} = 1; cross {0-3, 1-3} = 3, 2.
    let pos = [0.0, 0.0, 1.0, 0.0, 3.0, 0.0];
    let s = split::segregation(&pos, &[0, 0, 1], 0, 0).unwrap();
    assert!((s.same_task_distance - 1.0).abs() < 1e-12);
    assert!((s.cross_task_distance - 2.5).abs() < 1e-12);
    assert!((s.score - 0.4).abs() < 1e-12);
    assert_eq!(s.p_value, 1.0, "with no permutations p = 1/1");
    assert_eq!(split::segregation(&pos, &[1, 1, 1], 10, 0), None);
    assert_eq!(
        split::segregation(&pos, &[0, 1, 2], 10, 0),
        None,
        "no same-task pair"
    );
}

#[test]
fn assignment_of_an_unsplit_layer_is_none() {
    let a = Assignment {
        tasks: 2,
        layers: vec![3],
        groups: vec![vec![0, 1]],
    };
    assert_eq!(a.of(2), None);
    assert_eq!(a.counts(2), None);
    assert_eq!(a.counts(3), Some(vec![1, 1]));
}

#[test]
fn figure_data_applies_the_papers_filters() {
    use spatial_gpu::figure::{FigureData, Filters};
    let sizes = [2, 3, 2];
    let m = model(&sizes, 2, &[1, 2]);
    // Layer-1 input mass: neuron 0 = 0.09 (left out), neuron 1 = 0.2, neuron 2 = 0.5.
    let w1 = vec![0.05, 0.04, 0.1, -0.1, -0.5, 0.0];
    // Into the outputs: only |w| > 0.01 between drawn neurons is drawn; neuron 0's strong 1.0 is not
    // (neuron 0 is left out).
    let w2 = vec![1.0, 0.005, 0.02, 1.0, -0.3, 0.011];
    let p = params_with(&sizes, &[(1, w1), (2, w2)]);
    let a = split::assign(&m, &p);
    let fig = FigureData::new(&m, &p, &a, Filters::default(), "t".into());
    assert_eq!(fig.layers, vec![1, 2]);
    assert_eq!(fig.neurons[0].iter().map(|n| n.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(fig.neurons[1].iter().map(|n| n.0).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(fig.totals, vec![3, 2]);
    let edges: Vec<(usize, usize)> = fig.edges[0].iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(edges, vec![(2, 0), (1, 1), (2, 1)]);
    // Positions and tasks come from the model and the split.
    let (j, x, y, t) = fig.neurons[1][1];
    assert_eq!(
        (x as f32, y as f32),
        (p.position(2)[2 * j], p.position(2)[2 * j + 1])
    );
    assert_eq!(t, 1);

    // Both figures, PNG and SVG, from any model.
    let tmp = tempfile::tempdir().unwrap();
    let written = spatial_gpu::figure::write_figures(&m, &p, "test", tmp.path(), Filters::default()).unwrap();
    assert_eq!(written.len(), 4);
    for f in written {
        assert!(
            std::fs::metadata(&f).unwrap().len() > 1000,
            "{} is nearly empty",
            f.display()
        );
    }
}

/// `--method activations` on a network where the two methods must disagree: hidden neuron 0 reads
/// task 0's input feature and hidden neuron 1 task 1's, but their outgoing |w| feeds the *other*
/// task's head. The weights give neuron 0 to task 1; its activation is a function of task 0's class
/// (eta squared 1) and independent of task 1's (eta squared 0, every class pair occurs equally
/// often), so the activations give it to task 0.
#[test]
fn split_by_activations_follows_the_class_that_drives_each_neuron() {
    use spatial_gpu::analysis::drive;
    // Input 2 (one feature per task), hidden 2, output 4 (two heads of two classes).
    let m = model(&[2, 2, 4], 2, &[1, 2]);
    let p = params_with(
        &[2, 2, 4],
        &[
            (1, vec![4.0, 0.0, 0.0, 4.0]),
            // Output rows 0-1 are task 0's head, 2-3 task 1's: neuron 0 feeds task 1 strongly.
            (2, vec![0.0, 3.0, 0.0, -3.0, 3.0, 0.1, -3.0, 0.1]),
        ],
    );
    // All four (class 0, class 1) pairs, 5 times each; the feature of a task is its class.
    let pairs: Vec<(i32, i32)> = (0..20).map(|r| (r % 2, (r / 2) % 2)).collect();
    let x: Vec<f32> = pairs.iter().flat_map(|&(a, b)| [a as f32, b as f32]).collect();
    let test = TestSet {
        inputs: x,
        labels: pairs.iter().flat_map(|&(a, b)| [a, b]).collect(),
        len: pairs.len(),
        input_dim: 2,
    };
    let d = drive::drive(&m, &p, &test).unwrap();
    assert_eq!(d.layers, vec![1]);
    let eta = &d.eta2[0];
    assert!(
        (eta[0][0] - 1.0).abs() < 1e-9 && eta[0][1].abs() < 1e-9,
        "{eta:?}"
    );
    assert!(
        eta[1][0].abs() < 1e-9 && (eta[1][1] - 1.0).abs() < 1e-9,
        "{eta:?}"
    );

    let by_weights = split::assign(&m, &p);
    assert_eq!(by_weights.groups[0], vec![1, 0]);
    let by_activations = drive::assign_by_activations(&m, &p, &test).unwrap();
    assert_eq!(by_activations.groups[0], vec![0, 1]);
    assert_eq!(by_activations.groups[1], by_weights.groups[1], "the heads stay");

    // Through `analyse`: the report records the method and splits as the activations say.
    let mut be = backend(&m, p.clone());
    let report = split::analyse(
        &mut be,
        &test,
        1,
        SplitOptions {
            method: split::SplitMethod::Activations,
            permutations: 10,
            ..SplitOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.method, split::SplitMethod::Activations);
    assert_eq!(report.assignment.groups[0], vec![0, 1]);
    assert!(split::format_report(&report).contains("by activations"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["method"], "activations");
    // A neuron whose activation never varies has no drive: task 0, no NaN.
    let dead = params_with(&[2, 2, 4], &[(2, vec![0.0, 3.0, 0.0, -3.0, 3.0, 0.1, -3.0, 0.1])]);
    let d = drive::drive(&m, &dead, &test).unwrap();
    assert_eq!(d.eta2[0], vec![vec![0.0, 0.0], vec![0.0, 0.0]]);
    // A test set that does not fit the model is refused, not read out of bounds.
    let bad = TestSet {
        input_dim: 3,
        ..test.clone()
    };
    assert!(drive::drive(&m, &p, &bad).is_err());
}
