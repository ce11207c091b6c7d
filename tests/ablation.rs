//! Single-neuron ablation against the masked forward of the CPU backend, the selectivity index and
//! the split's agreement with it, and the modularity report that bundles every measure.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spatial_gpu::analysis::ablation::{self, preference, Ablation};
use spatial_gpu::analysis::{self, ablate, ModularityReport};
use spatial_gpu::backend::Backend;
use spatial_gpu::config::{Activation, Init, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::CpuBackend;
use spatial_gpu::data::batches::TestSet;
use spatial_gpu::model::{NeuronMask, Params, TrainState};
use spatial_gpu::split::{self, Assignment};
use spatial_gpu::train;

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

fn backend(m: &ModelConfig, params: Params) -> CpuBackend {
    let train = TrainConfig {
        batch_size: 8,
        ..TrainConfig::default()
    };
    CpuBackend::new(m.clone(), train, TrainState::new(params)).unwrap()
}

/// `count` made-up examples (uniform in [-2, 2]), more than one chunk of the ablation's forward,
/// labelled with the network's own predictions so that every changed prediction changes an accuracy;
/// every 11th label is missing, as in the sequential mode.
fn test_set_for(be: &mut CpuBackend, count: usize) -> TestSet {
    let m = be.model_config().clone();
    let n0 = m.sizes[0];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let inputs: Vec<f32> = (0..count * n0).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect();
    let logits = be.logits(&inputs, count, None).unwrap();
    let classes = m.head_sizes()[0];
    let labels = (0..count * m.heads)
        .map(|k| {
            let z = &logits[k * classes..(k + 1) * classes];
            let argmax = (0..classes).fold(0, |b, c| if z[c] > z[b] { c } else { b });
            if k % 11 == 3 {
                -1
            } else {
                argmax as i32
            }
        })
        .collect();
    TestSet {
        inputs,
        labels,
        len: count,
        input_dim: n0,
    }
}

/// `count` examples of `n0` zeros with made-up labels, for the input checks.
fn test_set(count: usize, n0: usize, classes: usize) -> TestSet {
    TestSet {
        inputs: vec![0.0; count * n0],
        labels: (0..count * 2).map(|k| (k % classes) as i32).collect(),
        len: count,
        input_dim: n0,
    }
}

/// Parameters whose predictions vary with the input: weights drawn as PyTorch does, scaled by 6
/// so that the sigmoids do not flatten every input to the same output.
fn varied_params(m: &ModelConfig) -> Params {
    let scale = 6.0;
    let mut p = Params::init(m, 3);
    let mut t = p.tensors_mut();
    for w in t.weights.iter_mut() {
        for v in w.iter_mut() {
            *v *= scale;
        }
    }
    drop(t);
    p
}

/// A mask with one neuron switched off.
fn one_off(m: &ModelConfig, layer: usize, neuron: usize) -> NeuronMask {
    let mut keep: NeuronMask = m.sizes.iter().map(|&n| vec![1.0; n]).collect();
    keep[layer][neuron] = 0.0;
    keep
}

#[test]
fn ablation_equals_the_masked_forward() {
    let sizes = [6, 9, 8, 7, 6];
    let m = model(&sizes, 2, &[2, 3, 4]);
    let p = varied_params(&m);
    let mut be = backend(&m, p.clone());
    let test = test_set_for(&mut be, 700);
    let layers = [1, 2, 3, 4];
    for &l in &layers {
        for j in 0..sizes[l] {
            let want = be
                .logits(&test.inputs, test.len, Some(&one_off(&m, l, j)))
                .unwrap();
            let got = ablation::ablated_logits(&m, &p, &test.inputs, test.len, l, j).unwrap();
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-5, "layer {l} neuron {j}: logits differ by {worst}");
        }
    }
    let a = ablate(&m, &p, &test, &layers).unwrap();
    assert_eq!(a.full_accuracy, train::evaluate(&mut be, &test, None).unwrap());
    let mut changed = 0;
    for (k, &l) in layers.iter().enumerate() {
        assert_eq!(a.accuracy[k].len(), sizes[l]);
        for j in 0..sizes[l] {
            let masked = train::evaluate(&mut be, &test, Some(&one_off(&m, l, j))).unwrap();
            assert_eq!(a.accuracy[k][j], masked, "layer {l} neuron {j}");
            changed += (masked != a.full_accuracy) as usize;
        }
    }
    // The comparison is not vacuous: most ablations change some accuracy.
    let distinct: std::collections::BTreeSet<i32> = test.labels.iter().copied().collect();
    assert!(
        changed > 20,
        "only {changed} ablations changed an accuracy; labels {distinct:?}"
    );
    assert_eq!((a.tasks, a.examples), (2, 700));
    // The backend route (masked evaluations, the one a GPU takes) gives the same accuracies.
    let masked = ablation::ablate_masked(&mut be, &test, &layers).unwrap();
    assert_eq!(
        (masked.full_accuracy, masked.accuracy),
        (a.full_accuracy, a.accuracy)
    );
}

#[test]
fn ablation_rejects_bad_input() {
    let m = model(&[6, 5, 4], 2, &[2]);
    let p = Params::init(&m, 1);
    let e = ablate(&m, &p, &test_set(10, 5, 2), &[2]).unwrap_err().to_string();
    assert!(e.contains("5 inputs") && e.contains("6"), "{e}");
    let e = ablate(&m, &p, &test_set(10, 6, 2), &[3]).unwrap_err().to_string();
    assert!(e.contains("layer 3"), "{e}");
    let e = ablate(&m, &p, &test_set(10, 6, 2), &[0]).unwrap_err().to_string();
    assert!(e.contains("layer 0"), "{e}");
    let e = ablation::ablated_logits(&m, &p, &[0.0; 12], 2, 1, 9)
        .unwrap_err()
        .to_string();
    assert!(e.contains("neuron 9"), "{e}");
    let e = ablate(&m, &Params::zeros(&[6, 5, 2]), &test_set(10, 6, 2), &[2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not fit"), "{e}");
}

#[test]
fn selectivity_index_by_hand() {
    // Only task 0 hurt: preferred 0, index (0.02 - 0) / (0.02 + 0) = 1.
    assert_eq!(preference(&[0.02, 0.0]), (Some(0), 1.0));
    // Task 1 hurt three times as much as task 0: (0.03 - 0.01) / (0.03 + 0.01) = 0.5.
    let (p, s) = preference(&[0.01, 0.03]);
    assert_eq!(p, Some(1));
    assert!((s - 0.5).abs() < 1e-12);
    // Equal drops: the lower task, index 0.
    assert_eq!(preference(&[0.01, 0.01]), (Some(0), 0.0));
    // A gain counts as no drop.
    assert_eq!(preference(&[-0.01, 0.02]), (Some(1), 1.0));
    // Nothing hurt: no preferred task.
    assert_eq!(preference(&[0.0, -0.01]), (None, 0.0));
    // Three tasks: o = (0.01 + 0.03) / 2 = 0.02, index (0.06 - 0.02) / 0.08 = 0.5.
    let (p, s) = preference(&[0.01, 0.06, 0.03]);
    assert_eq!(p, Some(1));
    assert!((s - 0.5).abs() < 1e-12);
}

#[test]
fn agreement_of_the_split_with_the_ablation() {
    // Split layers [1, 2] of a 2-3-2 network with two tasks (layer 2 = the output, one neuron per
    // head). Layer-1 neurons are assigned to tasks [0, 1, 1].
    let assignment = Assignment {
        tasks: 2,
        layers: vec![1, 2],
        groups: vec![vec![0, 1, 1], vec![0, 1]],
    };
    let ablation = Ablation {
        layers: vec![1, 2],
        tasks: 2,
        examples: 100,
        full_accuracy: vec![0.9, 0.8],
        accuracy: vec![
            // Neuron 0 hurts task 0 (agrees); neuron 1 hurts task 0 most (disagrees); neuron 2 hurts
            // nothing (not counted).
            vec![vec![0.8, 0.8], vec![0.85, 0.79], vec![0.9, 0.81]],
            vec![vec![0.5, 0.8], vec![0.9, 0.3]],
        ],
        seconds: 0.0,
    };
    let s = ablation::selectivity(&ablation, &assignment).unwrap();
    assert_eq!(s.neurons.len(), 5);
    let l1 = &s.layers[0];
    assert_eq!((l1.layer, l1.neurons, l1.with_drop), (1, 3, 2));
    assert_eq!(l1.agreement, Some(0.5));
    // Indices: neuron 0: 1; neuron 1: (0.05 - 0.01) / 0.06 = 2/3.
    assert!((l1.mean_index.unwrap() - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
    assert_eq!(s.neurons[2].preferred, None);
    assert_eq!(s.layers[1].agreement, Some(1.0));
    // The overall agreement leaves the output layer out.
    assert_eq!(s.agreement, Some(0.5));

    let wrong = Assignment {
        layers: vec![2],
        groups: vec![vec![0, 1]],
        ..assignment
    };
    let e = ablation::selectivity(&ablation, &wrong).unwrap_err().to_string();
    assert!(e.contains("layer 1"), "{e}");
}

#[test]
fn the_report_bundles_every_measure() {
    let sizes = [6, 9, 8, 7, 6];
    let m = model(&sizes, 2, &[2, 3, 4]);
    let p = varied_params(&m);
    let test = test_set_for(&mut backend(&m, p.clone()), 300);
    let a = split::assign(&m, &p);
    let abl = ablate(&m, &p, &test, &a.layers).unwrap();
    let r = analysis::modularity_report(&m, &p, &a, 7, Some(&abl)).unwrap();
    assert_eq!(r.layers, vec![2, 3, 4]);
    assert_eq!(r.nodes, 8 + 7 + 6);
    let g = analysis::WeightGraph::from_model(&m, &p, &a.layers).unwrap();
    let labels = analysis::task_labels(&g, &a).unwrap();
    assert_eq!(r.task_modularity, analysis::modularity(&g, &labels));
    // The per-epoch route, straight from the weights, gives the same Q.
    let direct = analysis::task_modularity(&p, &a).unwrap();
    assert!(
        (direct - r.task_modularity.unwrap()).abs() < 1e-12,
        "{direct} vs {r:?}"
    );
    let c = analysis::louvain(&g, 7);
    assert_eq!(
        (r.detected_modularity, r.detected_communities),
        (c.modularity, c.count)
    );
    // Louvain optimises Q: it does at least as well as the task partition.
    assert!(r.detected_modularity.unwrap() >= r.task_modularity.unwrap() - 1e-12);
    assert_eq!(r.participation.len(), 3);
    let sel = r.selectivity.as_ref().unwrap();
    assert_eq!(sel.examples, 300);
    assert_eq!(sel.agreement, ablation::selectivity(&abl, &a).unwrap().agreement);

    let text = r.format();
    assert!(
        text.contains("Q of the task partition") && text.contains("agreement"),
        "{text}"
    );
    let json = serde_json::to_string(&r).unwrap();
    let back: ModularityReport = serde_json::from_str(&json).unwrap();
    // serde_json may round a float's last bit on the way back: compare the numbers to 1e-12.
    assert_eq!(
        (&back.layers, back.detected_communities),
        (&r.layers, r.detected_communities)
    );
    assert!((back.task_modularity.unwrap() - r.task_modularity.unwrap()).abs() < 1e-12);
    assert_eq!(back.participation.len(), r.participation.len());
    assert_eq!(back.selectivity.unwrap().layers.len(), sel.layers.len());

    // Without an ablation the report has no selectivity, and says nothing about it.
    let r = analysis::modularity_report(&m, &p, &a, 7, None).unwrap();
    assert!(r.selectivity.is_none());
    assert!(!r.format().contains("ablation on"));
}
