"""Same arguments give the same bytes; a different seed gives a different survey."""

from rapid.sim import simulate_survey


def _run(path, seed):
    return simulate_survey(path, fields=1, epochs=1, size=64, seed=seed,
                           stars_per_sca=4000, galaxies_per_sca=2000)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _run(tmp_path / "a", 7)
    b = _run(tmp_path / "b", 7)
    c = _run(tmp_path / "c", 8)
    for pa, pb in zip(a.images + a.psfs + [a.truth], b.images + b.psfs + [b.truth]):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    assert a.images[0].read_bytes() != c.images[0].read_bytes()
    assert a.truth.read_bytes() != c.truth.read_bytes()
