//! The Plain and R1cs backends on their own: documented allocation order, modes, errors, and
//! the ark-relations replay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use ark_bn254::Fr;
use ark_ff::{Field, One, Zero};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use common::{block_on, fr, p1};
use tacit_circuits::{Backend, CircuitError, Plain, R1cs, Result};

/// inputs; squares; bits of x[1]; is_zero of all; x[1]^2 - 25 asserted zero; flags revealed.
async fn ops<B: Backend<F = Fr>>(b: &mut B, values: Option<&[Fr]>) -> Result<Vec<Fr>> {
    let x = b.private_inputs(p1(), values, 4).await?;
    let sq = b.mul(&x, &x).await?;
    let bits = b.to_bits(&x[1..2], 3).await?;
    assert_eq!((bits.len(), bits[0].len()), (1, 3));
    let zero = b.is_zero(&x).await?;
    let diff = b.sub(&sq[1], &b.constant(fr(25)));
    b.assert_zero(&[diff])?;
    let public = b.public_inputs(&[fr(11)])?;
    let flagged = b.add(&zero[0], &public[0]);
    let mut out = b.reveal(&zero).await?;
    out.extend(b.reveal(&[flagged]).await?);
    Ok(out)
}

fn expected_witness() -> Vec<Fr> {
    let inv5 = fr(5).inverse().unwrap();
    let inv7 = fr(7).inverse().unwrap();
    // inputs (4), squares (4), bits of 5 (3, LSB first), then (flag, hint) per value.
    [fr(0), fr(5), fr(0), fr(7), fr(0), fr(25), fr(0), fr(49), fr(1), fr(0), fr(1)]
        .into_iter()
        .chain([fr(1), fr(1), fr(0), inv5, fr(1), fr(1), fr(0), inv7])
        .collect()
}

const INPUTS: [u64; 4] = [0, 5, 0, 7];

#[test]
fn documented_allocation_order() {
    let inputs: Vec<Fr> = INPUTS.iter().map(|v| fr(*v)).collect();
    let expected_out = vec![fr(1), fr(0), fr(1), fr(0), fr(12)];
    // Instance order: the public input, then the revealed values, as allocated.
    let expected_instance: Vec<Fr> = std::iter::once(fr(11)).chain(expected_out.iter().copied()).collect();

    let mut plain = Plain::new();
    assert_eq!(block_on(ops(&mut plain, Some(&inputs))).unwrap(), expected_out);
    assert_eq!(plain.witness(), expected_witness());
    assert_eq!(plain.instance(), expected_instance);
    let counts = plain.counts();
    assert_eq!((counts.mul_calls, counts.to_bits_calls, counts.is_zero_calls, counts.reveal_calls), (1, 1, 1, 2));

    let mut r1cs = R1cs::new_prove();
    assert_eq!(block_on(ops(&mut r1cs, Some(&inputs))).unwrap(), expected_out);
    assert_eq!(r1cs.witness_assignment().unwrap(), expected_witness());
    assert_eq!(r1cs.instance_assignment().unwrap(), expected_instance);
    let full = r1cs.full_assignment().unwrap();
    assert_eq!(full[0], Fr::one());
    assert_eq!(full[1..1 + expected_instance.len()], expected_instance[..]);
    assert_eq!(full[1 + expected_instance.len()..], expected_witness()[..]);
    // mul 4, bits 3 + 1, is_zero 2 per value, assert_zero 1, reveal 5.
    assert_eq!(r1cs.num_constraints(), 4 + 4 + 8 + 1 + 5);
    assert!(r1cs.is_satisfied().unwrap());

    let mut setup = R1cs::new_setup();
    // Setup mode: outputs unknown, returned as zeros.
    assert_eq!(block_on(ops(&mut setup, None)).unwrap(), vec![Fr::zero(); 5]);
    assert_eq!(setup.constraints(), r1cs.constraints());
    assert_eq!((setup.num_witness(), setup.num_instance()), (r1cs.num_witness(), r1cs.num_instance()));
    assert!(setup.full_assignment().is_err());
    assert!(setup.is_satisfied().is_err());
}

#[test]
fn asserted_relation_is_checked() {
    let bad: Vec<Fr> = [0u64, 6, 0, 7].iter().map(|v| fr(*v)).collect();
    assert!(matches!(block_on(ops(&mut Plain::new(), Some(&bad))), Err(CircuitError::Unsatisfied(_))));
    assert!(matches!(block_on(ops(&mut R1cs::new_prove(), Some(&bad))), Err(CircuitError::Unsatisfied(_))));

    // The assert_zero constraint itself rejects a witness that breaks it: change x[1] and its
    // square consistently (5 -> 6, 25 -> 36) plus its bits; only the assertion fails.
    let inputs: Vec<Fr> = INPUTS.iter().map(|v| fr(*v)).collect();
    let mut r1cs = R1cs::new_prove();
    block_on(ops(&mut r1cs, Some(&inputs))).unwrap();
    let mut w = r1cs.witness_assignment().unwrap().to_vec();
    w[1] = fr(6);
    w[5] = fr(36);
    w[8..11].copy_from_slice(&[fr(0), fr(1), fr(1)]);
    w[14] = fr(6).inverse().unwrap();
    let instance = r1cs.instance_assignment().unwrap().to_vec();
    let assert_index = 4 + 4 + 8; // after mul, to_bits, is_zero constraints
    assert_eq!(r1cs.first_unsatisfied(&instance, &w).unwrap(), Some(assert_index));
}

#[test]
fn usage_errors() {
    let mut plain = Plain::<Fr>::new();
    assert!(matches!(block_on(plain.private_inputs(p1(), None, 1)), Err(CircuitError::Usage(_))));
    assert!(matches!(block_on(plain.private_inputs(p1(), Some(&[fr(1)]), 2)), Err(CircuitError::Usage(_))));
    assert!(matches!(block_on(plain.mul(&[fr(1)], &[])), Err(CircuitError::Usage(_))));
    assert!(matches!(block_on(plain.to_bits(&[fr(1)], 81)), Err(CircuitError::Usage(_))));

    let mut r1cs = R1cs::<Fr>::new_prove();
    assert!(matches!(block_on(r1cs.private_inputs(p1(), None, 1)), Err(CircuitError::Usage(_))));
    assert!(matches!(block_on(r1cs.private_inputs(p1(), Some(&[fr(1)]), 2)), Err(CircuitError::Usage(_))));
    let x = block_on(r1cs.private_inputs(p1(), Some(&[fr(3)]), 1)).unwrap();
    assert!(matches!(block_on(r1cs.mul(&x, &[])), Err(CircuitError::Usage(_))));
    assert!(matches!(block_on(r1cs.to_bits(&x, 1)), Err(CircuitError::Unsatisfied(_))));
    assert!(r1cs.constraint_system_with(&[], &[]).is_err(), "witness length checked");

    // Setup mode accepts no values and ignores given ones.
    let mut setup = R1cs::<Fr>::new_setup();
    let x = block_on(setup.private_inputs(p1(), Some(&[fr(3)]), 1)).unwrap();
    assert_eq!(x[0].value(), None);
    let bits = block_on(setup.to_bits(&x, 1)).unwrap();
    assert_eq!(bits[0][0].value(), None);
    assert!(setup.assert_zero(&x).is_ok());
}

#[test]
fn linear_combinations_stay_compact() {
    let mut r1cs = R1cs::<Fr>::new_prove();
    let x = block_on(r1cs.private_inputs(p1(), Some(&[fr(3), fr(4)]), 2)).unwrap();
    let zero = r1cs.sub(&x[0], &x[0]);
    assert!(zero.lc().is_empty());
    assert_eq!(zero.value(), Some(Fr::zero()));
    let many: Vec<_> = (0..50).map(|i| x[i % 2].clone()).collect();
    let s = r1cs.sum(&many);
    assert_eq!(s.lc().len(), 2);
    assert_eq!(s.value(), Some(fr(25 * 3 + 25 * 4)));
    let c = r1cs.add_constant(&r1cs.scale(&x[1], Fr::zero()), fr(9));
    assert_eq!(c.lc().len(), 1);
    assert_eq!(c.value(), Some(fr(9)));
    let back = r1cs.add_constant(&c, -fr(9));
    assert!(back.lc().is_empty());
}

#[test]
fn replays_into_ark_relations() {
    let inputs: Vec<Fr> = INPUTS.iter().map(|v| fr(*v)).collect();
    let mut r1cs = R1cs::new_prove();
    block_on(ops(&mut r1cs, Some(&inputs))).unwrap();
    let mut setup = R1cs::new_setup();
    block_on(ops(&mut setup, None)).unwrap();

    // As ark-groth16 drives it: a fresh system, prove mode.
    let cs = ConstraintSystem::<Fr>::new_ref();
    (&r1cs).generate_constraints(cs.clone()).unwrap();
    assert!(cs.is_satisfied().unwrap());
    assert_eq!(cs.instance_assignment().unwrap()[1..], r1cs.instance_assignment().unwrap()[..]);
    assert_eq!(cs.witness_assignment().unwrap(), r1cs.witness_assignment().unwrap());
    cs.finalize();
    let matrices = cs.to_matrices().unwrap();
    let r1cs_matrices = matrices.values().next().unwrap();
    assert_eq!(r1cs_matrices.len(), 3);
    assert_eq!(r1cs_matrices[0].len(), r1cs.num_constraints());

    // Setup mode, from either system: same matrices.
    for system in [&setup, &r1cs] {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(SynthesisMode::Setup);
        system.generate_constraints(cs.clone()).unwrap();
        cs.finalize();
        assert_eq!(cs.to_matrices().unwrap(), matrices);
    }
    // A setup-mode system cannot fill a prove-mode one.
    let cs = ConstraintSystem::<Fr>::new_ref();
    assert!((&setup).generate_constraints(cs).is_err());
    // Nor can anything go into a system that already has variables (numbering would differ).
    let cs = ConstraintSystem::<Fr>::new_ref();
    let _ = cs.new_witness_variable(|| Ok(Fr::one())).unwrap();
    assert!((&r1cs).generate_constraints(cs).is_err());
}
