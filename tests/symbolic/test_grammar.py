from symusic import Score

from notewave.symbolic.generate import continue_midi, sample_continuation
from notewave.symbolic.grammar import RemiGrammar, State, grammar_errors


def test_every_real_chorale_follows_the_grammar(jsb_test_files, tiny_model):
    tok = tiny_model.tokenizer
    for path in jsb_test_files:
        assert grammar_errors(tok, tok.encode_body(Score(str(path)))) == []


def test_masks_follow_remi_rules(tiny_model):
    tok = tiny_model.tokenizer
    grammar = RemiGrammar(tok, programs=[19])

    def allowed_names(state):
        return {tok.token_name(i) for i in grammar.mask(state).nonzero().flatten().tolist()}

    after_pitch = allowed_names(State(last="Pitch", position=4))
    assert after_pitch and all(n.startswith("Velocity_") for n in after_pitch)
    after_velocity = allowed_names(State(last="Velocity", position=4))
    assert after_velocity and all(n.startswith("Duration_") for n in after_velocity)
    after_program = allowed_names(State(last="Program", position=4))
    assert after_program and all(n.startswith("Pitch_") for n in after_program)
    after_note = allowed_names(State(last="Duration", position=8))
    assert "Bar_None" in after_note and "Program_19" in after_note and "Program_0" not in after_note
    positions = sorted(int(n.split("_")[1]) for n in after_note if n.startswith("Position_"))
    assert positions == list(range(9, 32))  # strictly later, inside a 4/4 bar of 32 positions
    assert not any(n.startswith(("Style_", "Instrument_", "BOS", "PAD", "EOS")) for n in after_note)


def test_constrained_samples_always_decode(jsb_test_files, tiny_model):
    """An untrained model samples near-uniform tokens: the grammar mask alone makes them valid MIDI."""
    tok = tiny_model.tokenizer
    prompt = Score(str(jsb_test_files[3]))
    bad_unconstrained = 0
    for seed in range(4):
        out = continue_midi(
            tiny_model.model,
            tiny_model.tokenizer,
            prompt,
            bars=1,
            seed=seed,
            constrained=True,
            max_tokens=120,
            prompt_bars=2,
        )
        assert out.note_num() > Score(str(jsb_test_files[3])).clip(0, 2 * 4 * 480, clip_end=True).note_num()
        ids = _raw_sample(tiny_model, prompt, seed, constrained=False)
        bad_unconstrained += bool(grammar_errors(tok, ids))
        ids = _raw_sample(tiny_model, prompt, seed, constrained=True)
        assert grammar_errors(tok, ids) == []
    assert bad_unconstrained >= 3


def _raw_sample(model, prompt, seed, constrained):
    result = sample_continuation(
        model.model,
        model.tokenizer,
        prompt,
        bars=2,
        seed=seed,
        style="bach",
        constrained=constrained,
        max_tokens=60,
        prompt_bars=2,
        top_p=None,
    )
    return [model.tokenizer.remi["Bar_None"]] + result.new_ids
