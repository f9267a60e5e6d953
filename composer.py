"""The composer of the embedded dataset: a band's score (notes in seconds), drawn from a seed.

A key, a scale, a tempo, a four-chord progression and one- or two-bar patterns per part that repeat
over the chords with small variations, so a language model on the tokens has structure to find
(harmony, metre, repetition). The band is shaped like a Slakh2100 track: the four benchmark targets
(bass, drums, guitar, piano) and a `pad` and a `lead` that stay in the mixture; which parts play,
octaves, velocities, note lengths and timing vary per track. `synth.py` renders the score.
"""
from dataclasses import dataclass, field

import numpy as np

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {  # scale degree of each chord's root, 0 = tonic (I-V-vi-IV, i-VI-III-VII, ...)
    "major": [(0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (1, 4, 0, 5), (0, 3, 0, 4)],
    "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)],
}
CHORD_TONES = (0, 2, 4, 7)  # root, third, fifth, octave, as scale-degree offsets from the root
STEPS_PER_BAR = 16  # sixteenth notes in a 4/4 bar
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51  # General MIDI percussion keys
RELEASE_SECONDS = 1.0  # silence after the last bar for notes to ring out
PARTS = ("bass", "drums", "guitar", "piano", "pad", "lead")  # the first four are separation targets
PLAYS = {"bass": 0.95, "drums": 0.9, "guitar": 0.75, "piano": 0.8, "pad": 0.75, "lead": 0.7}  # P(part plays)


@dataclass
class Note:
    onset: float  # seconds
    duration: float  # seconds
    pitch: int  # MIDI note number; for drums a General MIDI percussion key
    velocity: float  # 0..1


@dataclass
class Score:
    """What a track is made of; `compose` draws the plan, then fills `notes` part by part."""
    key: int  # pitch class of the tonic, 0 = C
    scale: str  # "major" or "minor"
    bpm: float
    chords: list  # scale degree of the chord root in each bar
    motif_bars: int  # the patterns repeat every 1 or 2 bars
    vary: float  # probability that one event of a repetition is changed
    notes: dict = field(default_factory=dict)  # part -> list[Note]; only the parts that play

    @property
    def bar_seconds(self):
        return 4 * 60.0 / self.bpm

    @property
    def duration(self):  # seconds, with a release tail for the last notes to ring out
        return len(self.chords) * self.bar_seconds + RELEASE_SECONDS

    def pitch(self, degree, octave):
        """MIDI number of scale degree `degree` (may exceed 6 or be negative) above the tonic in `octave`."""
        return 12 * (octave + 1) + self.key + SCALES[self.scale][degree % 7] + 12 * (degree // 7)

    def pitch_classes(self):
        """The seven pitch classes of the track's scale."""
        return {(self.key + step) % 12 for step in SCALES[self.scale]}


# ---- patterns that repeat over the chords, with variations ----

def rhythm(rng, grid, density):
    """Onset steps of one bar on a grid of `grid` sixteenths: always the downbeat, beats likelier."""
    return [step for step in range(0, STEPS_PER_BAR, grid)
            if step == 0 or rng.random() < density * (1.6 if step % 4 == 0 else 0.8)]


def make_pattern(rng, score, grid, density, pick_tone, loudness=(0.6, 1.0)):
    """`score.motif_bars` bars, each a list of events (step, tone, velocity); tone = pick_tone(step)."""
    return [[(step, pick_tone(step), rng.uniform(*loudness)) for step in rhythm(rng, grid, density)]
            for _ in range(score.motif_bars)]


def realise(rng, score, pattern, to_pitches, mutate, legato, first_bar=0):
    """Play the pattern bar after bar over the chords; each event mutates with probability score.vary.

    `to_pitches(chord_root, tone)` gives the MIDI pitches of one event (a chord gives several, in
    order). A note lasts until the next onset of the pattern, times `legato`; onsets are humanised
    by a few milliseconds and velocities by a few percent.
    """
    step_seconds = score.bar_seconds / STEPS_PER_BAR
    notes = []
    for bar in range(first_bar, len(score.chords)):
        events = pattern[bar % len(pattern)]
        for i, (step, tone, velocity) in enumerate(events):
            if rng.random() < score.vary:  # the variation that keeps a repetition from being exact
                tone = mutate(tone)
            next_step = events[i + 1][0] if i + 1 < len(events) else STEPS_PER_BAR
            onset = max(0.0, (bar * STEPS_PER_BAR + step) * step_seconds + rng.normal(0.0, 0.006))  # humanise
            for pitch in to_pitches(score.chords[bar], tone):
                notes.append(Note(onset, (next_step - step) * step_seconds * legato, pitch,
                                  float(np.clip(velocity * rng.uniform(0.9, 1.1), 0.05, 1.0))))
    return notes


def random_chord_tone(rng):
    return lambda tone: int(rng.integers(len(CHORD_TONES)))


def walk(rng):
    """A melody's next degree (relative to the chord root): chord tones on beats, steps between."""
    degree = [0]

    def next_degree(step):
        move = rng.choice(CHORD_TONES) if step % 4 == 0 else degree[0] + rng.choice([-2, -1, 1, 2])
        degree[0] = int(np.clip(move, -3, 6))
        return degree[0]
    return next_degree


# ---- the parts ----

def compose_bass(rng, score, first_bar):
    """Root on the downbeat, then roots, thirds, fifths and octaves (indices into CHORD_TONES) on eighths."""
    octave = 2 if score.key < 5 else int(rng.choice([1, 2]))  # roots between F1 and E3
    pattern = make_pattern(rng, score, int(rng.choice([2, 2, 4])), rng.uniform(0.3, 0.6),
                           lambda step: 0 if step == 0 else int(rng.choice(4, p=[0.5, 0.1, 0.3, 0.1])))
    return realise(rng, score, pattern, lambda root, tone: [score.pitch(root + CHORD_TONES[tone], octave)],
                   random_chord_tone(rng), rng.uniform(0.5, 0.95), first_bar)


def compose_guitar(rng, score, first_bar):
    """An arpeggio of chord tones on eighths or sixteenths, or strummed chords."""
    octave = int(rng.choice([3, 3, 4]))
    if rng.random() < 0.5:
        grid = int(rng.choice([1, 2]))
        pattern = make_pattern(rng, score, grid, 0.45 if grid == 1 else 0.6,
                               lambda step: int(rng.integers(len(CHORD_TONES))))
        return realise(rng, score, pattern, lambda root, tone: [score.pitch(root + CHORD_TONES[tone], octave)],
                       random_chord_tone(rng), rng.uniform(1.0, 3.0), first_bar)
    strum = rng.uniform(0.008, 0.025)  # seconds between strings
    pattern = make_pattern(rng, score, 2, rng.uniform(0.3, 0.5), lambda step: 0)
    notes = realise(rng, score, pattern, lambda root, tone: [score.pitch(root + t, 3) for t in CHORD_TONES],
                    lambda tone: tone, rng.uniform(0.5, 1.0), first_bar)
    for i, note in enumerate(notes):  # each strum is len(CHORD_TONES) notes in a row: stagger them
        note.onset += (i % len(CHORD_TONES)) * strum
    return notes


def compose_piano(rng, score, first_bar):
    """Block triads, plus (in a third of the tracks) a right-hand melody."""
    octave = (4 if score.key < 6 else 3) - int(rng.random() < 0.3)
    pattern = make_pattern(rng, score, int(rng.choice([2, 4, 8])), 0.4, lambda step: 0)
    notes = realise(rng, score, pattern, lambda root, _: [score.pitch(root + t, octave) for t in (0, 2, 4)],
                    lambda tone: tone, rng.uniform(0.6, 1.0), first_bar)
    if rng.random() < 0.35:
        melody = make_pattern(rng, score, 2, 0.5, walk(rng))
        notes += realise(rng, score, melody, lambda root, degree: [score.pitch(root + degree, octave + 1)],
                         lambda degree: degree + int(rng.choice([-1, 1])), 0.9, first_bar)
    return notes


def compose_pad(rng, score, first_bar):
    """Sustained chords, one or two per bar, held nearly to the next (organ, strings, synth pad)."""
    octave = int(rng.choice([3, 4]))
    voicing = [(0, 2, 4), (0, 4, 7), (2, 4, 7)][rng.integers(3)]  # triad, open fifth + octave, inversion
    pattern = [[(0, 0, rng.uniform(0.5, 0.8))] + ([(8, 0, rng.uniform(0.4, 0.7))] if rng.random() < 0.3 else [])
               for _ in range(score.motif_bars)]
    return realise(rng, score, pattern, lambda root, _: [score.pitch(root + t, octave) for t in voicing],
                   lambda tone: tone, rng.uniform(0.9, 1.0), first_bar)


def compose_lead(rng, score, first_bar):
    """A melody: a bounded walk on the scale with rests, phrased over the motif (brass, reed, synth lead)."""
    octave = int(rng.choice([4, 5])) - int(score.key >= 7)
    melody = make_pattern(rng, score, int(rng.choice([2, 2, 4])), rng.uniform(0.3, 0.6), walk(rng))
    notes = realise(rng, score, melody, lambda root, degree: [score.pitch(root + degree, octave)],
                    lambda degree: degree + int(rng.choice([-1, 1])), rng.uniform(0.6, 0.95), first_bar)
    rest_bars = {bar for bar in range(len(score.chords)) if rng.random() < 0.2}  # the lead breathes
    bar = score.bar_seconds
    return [note for note in notes if int(note.onset // bar) not in rest_bars]


def compose_drums(rng, score, first_bar=0):
    """Kick on 1 and 3 plus extras, snare on 2 and 4, hats or ride, phrase-end fills and crashes."""
    hat_grid = int(rng.choice([1, 2, 2, 4]))
    hat = CLOSED_HAT if rng.random() < 0.8 else RIDE
    kicks = [0, 8] + [step for step in (3, 6, 10, 14) if rng.random() < 0.3]
    bar_events = ([(step, KICK, 1.0) for step in kicks] + [(step, SNARE, 0.9) for step in (4, 12)]
                  + [(step, hat, 0.8 if step % 4 == 0 else 0.5) for step in range(0, 16, hat_grid)])
    if rng.random() < 0.5:
        bar_events.append((14, OPEN_HAT, 0.6))
    notes = []
    for bar in range(first_bar, len(score.chords)):
        events = [event for event in bar_events if rng.random() > score.vary / 2]  # drop one now and then
        if bar % 4 == 3 and rng.random() < 0.4:  # a snare fill at the end of a four-bar phrase
            events += [(step, SNARE, 0.5 + 0.1 * (step - 12)) for step in (13, 14, 15)]
        if bar % 4 == 0 and rng.random() < 0.3:
            events.append((0, CRASH, 0.8))
        for step, pitch, velocity in events:
            onset = (bar + step / STEPS_PER_BAR) * score.bar_seconds + rng.normal(0.0, 0.003)
            notes.append(Note(max(onset, 0.0), 0.2, pitch, velocity * rng.uniform(0.8, 1.0)))
    return notes


COMPOSERS = {"bass": compose_bass, "drums": compose_drums, "guitar": compose_guitar,
             "piano": compose_piano, "pad": compose_pad, "lead": compose_lead}


def choose_parts(rng):
    """Which parts play: each with its probability in PLAYS, and always at least two targets."""
    playing = [part for part in PARTS if rng.random() < PLAYS[part]]
    if sum(part in playing for part in PARTS[:4]) < 2:
        playing = sorted(set(playing) | {"bass", "drums"}, key=PARTS.index)
    return playing


def compose(rng):
    """Draw a key, scale, tempo (80-140 bpm), four-chord progression, the band and its parts."""
    key, scale = int(rng.integers(12)), str(rng.choice(list(SCALES)))
    bpm = float(rng.uniform(80, 140))
    num_bars = max(3, round(rng.uniform(8.5, 11.0) * bpm / 240))  # about 8-12 s
    progression = PROGRESSIONS[scale][rng.integers(len(PROGRESSIONS[scale]))]
    score = Score(key, scale, bpm, [progression[bar % 4] for bar in range(num_bars)],
                  motif_bars=int(rng.choice([1, 2])), vary=rng.uniform(0.03, 0.15))
    for part in choose_parts(rng):
        first_bar = int(rng.random() < 0.2)  # some parts come in at the second bar
        notes = COMPOSERS[part](rng, score, first_bar)
        if notes:
            score.notes[part] = notes
    return score
