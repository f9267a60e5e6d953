"""The embedded default dataset: short synthetic band tracks with four stems, in Slakh2100's layout.

Every track is *composed* first (`compose`: a key, a scale, a tempo, a four-chord progression and
one- or two-bar patterns per instrument that repeat with small variations) and then *rendered*
(`render`) by four simple instruments, so a language model on the tokens has real structure to
find (harmony, metre, repetition) while timbres, gains, tempi and keys vary from track to track:

- guitar: Karplus-Strong plucked string (Karplus & Strong, "Digital Synthesis of Plucked-String
  and Drum Timbres", Computer Music Journal 1983), tuned exactly with the first-order all-pass
  of Jaffe & Smith ("Extensions of the Karplus-Strong Plucked-String Algorithm", CMJ 1983).
  The feedback delay line is one rational filter run by `scipy.signal.lfilter`, never a
  per-sample Python loop.
- piano: decaying, slightly inharmonic partials f_k = k f0 sqrt(1 + B k^2) (Fletcher, Blackham &
  Stratton, "Quality of Piano Tones", JASA 1962), higher partials dying faster.
- bass: a sawtooth through a Butterworth low-pass.
- drums: a pitch-swept sine kick, a noise-plus-tone snare, high-passed noise hi-hats.

`mix` is the sum of the stems, scaled so its peak stays at or below 0.9. The dataset is written
in the layout of Slakh2100 (Manilow et al., "Cutting Music Source Separation Some Slakh",
WASPAA 2019, arXiv:1909.08494), so the default run goes through the same loader as the real
data: `{train,validation,test}/TrackNNNNN/mix.flac`, `stems/S00..S03.flac`, `metadata.yaml`.
Generation is deterministic: track i of split s draws from `np.random.default_rng([seed, s, i])`.
"""
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.signal import butter, lfilter, sosfilt

from audio import write_audio
from files import UserError, atomic_write

GENERATOR_VERSION = 1
SPLITS = ("train", "validation", "test")
DEFAULT_NUM_TRACKS = (200, 10, 10)  # (train, validation, test)
MARKER = "synthetic_dataset.yaml"  # written last; its presence means the dataset is complete
RELEASE_SECONDS = 0.5  # silence after the last bar for notes to ring out

# ---- music theory ----

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {  # scale degree of each chord's root, 0 = tonic (I-V-vi-IV, i-VI-III-VII, ...)
    "major": [(0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (1, 4, 0, 5), (0, 3, 0, 4)],
    "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)],
}
CHORD_TONES = (0, 2, 4, 7)  # root, third, fifth, octave, as scale-degree offsets from the root
STEPS_PER_BAR = 16  # sixteenth notes in a 4/4 bar
KICK, SNARE, CLOSED_HAT, OPEN_HAT = 36, 38, 42, 46  # General MIDI percussion keys


@dataclass
class Note:
    onset: float  # seconds
    duration: float  # seconds
    pitch: int  # MIDI note number; for drums a General MIDI percussion key
    velocity: float  # 0..1


@dataclass
class Score:
    """What a track is made of; `compose` draws the plan, then fills `notes` instrument by instrument."""
    key: int  # pitch class of the tonic, 0 = C
    scale: str  # "major" or "minor"
    bpm: float
    chords: list  # scale degree of the chord root in each bar
    motif_bars: int  # the patterns repeat every 1 or 2 bars
    vary: float  # probability that one event of a repetition is changed
    notes: dict = field(default_factory=dict)  # instrument -> list[Note]

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


def midi_to_hz(pitch):
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


# ---- composition: one- or two-bar patterns that repeat over the chords, with variations ----

def rhythm(rng, grid, density):
    """Onset steps of one bar on a grid of `grid` sixteenths: always the downbeat, beats likelier."""
    return [step for step in range(0, STEPS_PER_BAR, grid)
            if step == 0 or rng.random() < density * (1.6 if step % 4 == 0 else 0.8)]


def make_pattern(rng, score, grid, density, pick_tone):
    """`score.motif_bars` bars, each a list of events (step, tone, velocity); tone = pick_tone(step)."""
    return [[(step, pick_tone(step), rng.uniform(0.6, 1.0)) for step in rhythm(rng, grid, density)]
            for _ in range(score.motif_bars)]


def realise(rng, score, pattern, to_pitches, mutate, legato, first_bar=0):
    """Play the pattern bar after bar over the chords; each event mutates with probability score.vary.

    `to_pitches(chord_root, tone)` gives the MIDI pitches of one event (a chord gives several, in
    order). A note lasts until the next onset of the pattern, times `legato`.
    """
    step_seconds = score.bar_seconds / STEPS_PER_BAR
    notes = []
    for bar in range(first_bar, len(score.chords)):
        events = pattern[bar % len(pattern)]
        for i, (step, tone, velocity) in enumerate(events):
            if rng.random() < score.vary:  # the variation that keeps a repetition from being exact
                tone = mutate(tone)
            next_step = events[i + 1][0] if i + 1 < len(events) else STEPS_PER_BAR
            onset = max(0.0, (bar * STEPS_PER_BAR + step) * step_seconds + rng.normal(0.0, 0.004))  # humanise
            for pitch in to_pitches(score.chords[bar], tone):
                notes.append(Note(onset, (next_step - step) * step_seconds * legato, pitch, velocity))
    return notes


def random_chord_tone(rng):
    return lambda tone: int(rng.integers(len(CHORD_TONES)))


def compose_bass(rng, score):
    """Root on the downbeat, then roots, thirds, fifths and octaves (indices into CHORD_TONES) on eighths."""
    octave = 2 if score.key < 5 else 1
    pattern = make_pattern(rng, score, 2, rng.uniform(0.3, 0.6),
                           lambda step: 0 if step == 0 else int(rng.choice(4, p=[0.5, 0.1, 0.3, 0.1])))
    return realise(rng, score, pattern, lambda root, tone: [score.pitch(root + CHORD_TONES[tone], octave)],
                   random_chord_tone(rng), rng.uniform(0.6, 0.95))


def compose_guitar(rng, score, first_bar):
    """An arpeggio of chord tones on eighths or sixteenths, or strummed chords."""
    if rng.random() < 0.5:
        grid = int(rng.choice([1, 2]))
        pattern = make_pattern(rng, score, grid, 0.45 if grid == 1 else 0.6,
                               lambda step: int(rng.integers(len(CHORD_TONES))))
        return realise(rng, score, pattern, lambda root, tone: [score.pitch(root + CHORD_TONES[tone], 3)],
                       random_chord_tone(rng), rng.uniform(1.5, 3.0), first_bar)
    strum = rng.uniform(0.008, 0.025)  # seconds between strings
    pattern = make_pattern(rng, score, 2, rng.uniform(0.3, 0.5), lambda step: 0)
    notes = realise(rng, score, pattern, lambda root, tone: [score.pitch(root + t, 3) for t in CHORD_TONES],
                    lambda tone: tone, rng.uniform(0.7, 1.0), first_bar)
    for i, note in enumerate(notes):  # each strum is len(CHORD_TONES) notes in a row: stagger them
        note.onset += (i % len(CHORD_TONES)) * strum
    return notes


def compose_piano(rng, score, first_bar):
    """Block triads, plus (in 70% of tracks) a melody: a bounded walk on the scale, chord tones on beats."""
    octave = 4 if score.key < 6 else 3
    pattern = make_pattern(rng, score, int(rng.choice([2, 4, 8])), 0.4, lambda step: 0)
    notes = realise(rng, score, pattern, lambda root, _: [score.pitch(root + t, octave) for t in (0, 2, 4)],
                    lambda tone: tone, rng.uniform(0.8, 1.0), first_bar)
    if rng.random() < 0.7:
        degree = [0]  # degrees are relative to the chord root, so the motif follows the harmony

        def next_degree(step):
            move = rng.choice(CHORD_TONES) if step % 4 == 0 else degree[0] + rng.choice([-2, -1, 1, 2])
            degree[0] = int(np.clip(move, -3, 6))
            return degree[0]
        melody = make_pattern(rng, score, 2, 0.5, next_degree)
        octave = 5 if score.key < 4 else 4
        notes += realise(rng, score, melody, lambda root, degree: [score.pitch(root + degree, octave)],
                         lambda degree: degree + int(rng.choice([-1, 1])), 0.9)
    return notes


def compose_drums(rng, score):
    """Kick on 1 and 3 plus extras, snare on 2 and 4, hats on 16ths, 8ths or 4ths, phrase-end fills."""
    hat_grid = int(rng.choice([1, 2, 2, 4]))
    kicks = [0, 8] + [step for step in (3, 6, 10, 14) if rng.random() < 0.3]
    bar_events = ([(step, KICK, 1.0) for step in kicks] + [(step, SNARE, 0.9) for step in (4, 12)]
                  + [(step, CLOSED_HAT, 0.8 if step % 4 == 0 else 0.5) for step in range(0, 16, hat_grid)])
    if rng.random() < 0.5:
        bar_events.append((14, OPEN_HAT, 0.6))
    notes = []
    for bar in range(len(score.chords)):
        events = [event for event in bar_events if rng.random() > score.vary / 2]  # drop one now and then
        if bar % 4 == 3 and rng.random() < 0.4:  # a snare fill at the end of a four-bar phrase
            events += [(step, SNARE, 0.5 + 0.1 * (step - 12)) for step in (13, 14, 15)]
        for step, pitch, velocity in events:
            onset = (bar + step / STEPS_PER_BAR) * score.bar_seconds + rng.normal(0.0, 0.003)
            notes.append(Note(max(onset, 0.0), 0.25, pitch, velocity * rng.uniform(0.85, 1.0)))
    return notes


def compose(rng):
    """Draw a key, scale, tempo (80-140 bpm), four-chord progression and patterns; return the Score."""
    key, scale = int(rng.integers(12)), str(rng.choice(list(SCALES)))
    bpm = float(rng.uniform(80, 140))
    num_bars = max(3, round(rng.uniform(8.5, 11.0) * bpm / 240))  # about 8-12 s
    progression = PROGRESSIONS[scale][rng.integers(len(PROGRESSIONS[scale]))]
    score = Score(key, scale, bpm, [progression[bar % 4] for bar in range(num_bars)],
                  motif_bars=int(rng.choice([1, 2])), vary=rng.uniform(0.03, 0.15))
    late = int(rng.choice(3, p=[0.6, 0.2, 0.2]))  # 1: guitar, 2: piano comes in at the second bar
    score.notes = {"bass": compose_bass(rng, score), "drums": compose_drums(rng, score),
                   "guitar": compose_guitar(rng, score, first_bar=int(late == 1)),
                   "piano": compose_piano(rng, score, first_bar=int(late == 2))}
    return score


# ---- instruments: one note (or drum hit) at a time, each vectorised ----

def pluck(frequency, seconds, sample_rate, rng, t60, brightness):
    """Karplus-Strong string: a noise burst circulating in a delay line with a two-point average.

    Loop: y[n] = x[n] + g/2 (y'[n-N] + y'[n-N-1]) where y' is y through the tuning all-pass
    (c + z^-1)/(1 + c z^-1) (Jaffe & Smith), which adds the fractional part of the period.
    Multiplying out gives one rational filter B(z)/A(z) for `lfilter`.
    """
    period = sample_rate / frequency  # samples per cycle = N + 1/2 (average) + d (all-pass)
    delay = int(np.floor(period - 0.6))
    fraction = period - 0.5 - delay  # in [0.1, 1.1)
    c = (1.0 - fraction) / (1.0 + fraction)
    g = 10.0 ** (-3.0 / (t60 * frequency))  # loop gain per period for a decay of 60 dB in t60 s
    n = int(seconds * sample_rate)
    burst = lfilter([1 - brightness], [1, -brightness], rng.uniform(-1, 1, delay))  # softer pluck
    excitation = np.zeros(n)
    excitation[:delay] = burst - burst.mean()
    a = np.zeros(delay + 3)
    a[0], a[1] = 1.0, c
    a[delay:delay + 3] -= 0.5 * g * np.array([c, 1.0 + c, 1.0])  # z^-N (1 + z^-1)/2 (c + z^-1)
    y = lfilter([1.0, c], a, excitation)
    return y / (np.abs(y).max() + 1e-9)


def piano_tone(frequency, seconds, sample_rate, inharmonicity, decay, brightness, phases):
    """Sum of partials k f0 sqrt(1 + B k^2), amplitude brightness^(k-1)/k, decaying faster with k."""
    k = np.arange(1, 11)
    partials = k * frequency * np.sqrt(1.0 + inharmonicity * k**2)
    keep = partials < 0.45 * sample_rate
    k, partials = k[keep], partials[keep]
    amplitude = brightness ** (k - 1) / k
    decay_seconds = decay * (261.6 / frequency) ** 0.3 / (1.0 + 0.6 * (k - 1))  # low notes ring longer
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = amplitude[:, None] * np.exp(-t / decay_seconds[:, None]) * np.sin(
        2 * np.pi * partials[:, None] * t + phases[: len(k), None])  # (partials, T)
    return x.sum(axis=0)  # (T,)


def envelope(n, sample_rate, hold_seconds, attack=0.003, release=0.05):
    """Gain that rises in `attack` s, holds until `hold_seconds`, then falls to 0 in `release` s."""
    t = np.arange(n) / sample_rate
    return np.clip(t / attack, 0, 1) * np.clip(1 - (t - hold_seconds) / release, 0, 1)


def add_at(buffer, sound, start):
    """buffer[start:start+len(sound)] += sound, clipped at the end of the buffer."""
    end = min(len(buffer), start + len(sound))
    if end > start:
        buffer[start:end] += sound[: end - start]


def drum_kit(rng, sample_rate):
    """{GM key: list of sounds}: a kick, three snares, four closed and one open hi-hat, drawn per track."""
    nyquist = sample_rate / 2
    t = np.arange(int(0.5 * sample_rate)) / sample_rate  # every sound is 0.5 s long

    def noise(low, high):  # band-limited white noise, (T,)
        band = butter(4, [low / nyquist, min(high, 0.9 * nyquist) / nyquist], btype="band", output="sos")
        return sosfilt(band, rng.standard_normal(len(t)))

    sweep = rng.uniform(40, 60) + rng.uniform(60, 140) * np.exp(-t / 0.04)  # Hz, falls fast to ~50 Hz
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / sample_rate) * np.exp(-t / rng.uniform(0.12, 0.3))
    body, snare_decay = rng.uniform(160, 240), rng.uniform(0.08, 0.2)
    snares = [(noise(min(1000, 0.3 * nyquist), rng.uniform(5000, 8000)) + 0.7 * np.sin(2 * np.pi * body * t))
              * np.exp(-t / snare_decay) for _ in range(3)]
    hat_low, closed_decay = min(rng.uniform(5000, 8000), 0.7 * nyquist), rng.uniform(0.015, 0.05)
    closed = [noise(hat_low, nyquist) * np.exp(-t / closed_decay) for _ in range(4)]
    kit = {KICK: [kick], SNARE: snares, CLOSED_HAT: closed,
           OPEN_HAT: [noise(hat_low, nyquist) * np.exp(-t / rng.uniform(0.15, 0.3))]}
    return {key: [sound / np.abs(sound).max() for sound in sounds] for key, sounds in kit.items()}


# ---- rendering: one buffer per instrument, then gains and the mix ----

def seconds_to_index(seconds, sample_rate):
    return int(round(seconds * sample_rate))


def render_bass(notes, buffer, rng, sample_rate):
    """Naive sawtooth per note, enveloped; the whole line then through a 4th-order Butterworth low-pass."""
    for note in notes:
        t = np.arange(seconds_to_index(note.duration + 0.05, sample_rate)) / sample_rate
        saw = 2.0 * ((midi_to_hz(note.pitch) * t) % 1.0) - 1.0
        add_at(buffer, note.velocity * saw * envelope(len(t), sample_rate, note.duration),
               seconds_to_index(note.onset, sample_rate))
    cutoff = min(rng.uniform(300, 1200), 0.45 * sample_rate)
    buffer[:] = sosfilt(butter(4, cutoff / (sample_rate / 2), output="sos"), buffer)


def render_guitar(notes, buffer, rng, sample_rate):
    t60, brightness = rng.uniform(0.8, 3.0), rng.uniform(0.0, 0.6)  # this track's strings
    for note in notes:
        seconds = min(note.duration, 2.0) + 0.06
        string = pluck(midi_to_hz(note.pitch), seconds, sample_rate, rng, t60, brightness)
        add_at(buffer, note.velocity * string * envelope(len(string), sample_rate, seconds - 0.06, 0.001),
               seconds_to_index(note.onset, sample_rate))


def render_piano(notes, buffer, rng, sample_rate):
    inharmonicity, decay, brightness = rng.uniform(1e-4, 1e-3), rng.uniform(0.4, 1.5), rng.uniform(0.3, 0.7)
    longest = max([note.duration for note in notes], default=0.0) + 0.1
    tones = {}  # pitch -> tone, rendered once per track at the longest length needed (release included)
    for note in notes:
        if note.pitch not in tones:
            tones[note.pitch] = piano_tone(midi_to_hz(note.pitch), longest, sample_rate, inharmonicity,
                                           decay, brightness, rng.uniform(0, 2 * np.pi, 10))
        sound = tones[note.pitch][: seconds_to_index(note.duration + 0.1, sample_rate)]
        add_at(buffer, note.velocity * sound * envelope(len(sound), sample_rate, note.duration, 0.004, 0.08),
               seconds_to_index(note.onset, sample_rate))


def render_drums(notes, buffer, rng, sample_rate):
    kit = drum_kit(rng, sample_rate)
    for note in notes:
        sound = kit[note.pitch][rng.integers(len(kit[note.pitch]))]  # one of the variants
        add_at(buffer, note.velocity * sound, seconds_to_index(note.onset, sample_rate))


RENDERERS = {"bass": render_bass, "drums": render_drums, "guitar": render_guitar, "piano": render_piano}


def render(score, rng, sample_rate):
    """Play the score with per-track timbres; return float32 stems and their sum `mix` (peak <= 0.9)."""
    stems = {}
    for name, render_stem in RENDERERS.items():
        stems[name] = np.zeros(seconds_to_index(score.duration, sample_rate))
        render_stem(score.notes[name], stems[name], rng, sample_rate)
    # per-stem gains: equal RMS (0.1), then -9..0 dB at random; then one scale for the peaks
    for name, x in stems.items():
        stems[name] = x * 0.1 / (np.sqrt(np.mean(x**2)) + 1e-9) * 10 ** (rng.uniform(-9, 0) / 20)
    mix = sum(stems.values())
    stem_peak = max(np.abs(x).max() for x in stems.values())
    scale = min(rng.uniform(0.6, 0.9) / np.abs(mix).max(), 0.95 / stem_peak)  # mix peak 0.6-0.9
    stems = {name: (x * scale).astype(np.float32) for name, x in stems.items()}
    stems["mix"] = (mix * scale).astype(np.float32)
    return stems


def generate_track(rng, sample_rate):
    """Compose and render one track: {bass, drums, guitar, piano, mix} -> float32 (T,) arrays."""
    return render(compose(rng), rng, sample_rate)


# ---- the dataset on disk, in Slakh2100's layout ----

STEM_METADATA = {  # Slakh stem id -> (our stem, inst_class, is_drum, program_num, midi_program_name)
    "S00": ("bass", "Bass", False, 33, "Electric Bass (finger)"),
    "S01": ("drums", "Drums", True, 0, "Drums"),
    "S02": ("guitar", "Guitar", False, 25, "Acoustic Guitar (steel)"),
    "S03": ("piano", "Piano", False, 0, "Acoustic Grand Piano"),
}


def marker_for(sample_rate, seed, num_tracks):
    return {"generator": "audio-mlm synth.py", "version": GENERATOR_VERSION,
            "sample_rate": int(sample_rate), "seed": int(seed), "num_tracks": [int(n) for n in num_tracks]}


def is_complete(root, sample_rate=16000, seed=0, num_tracks=DEFAULT_NUM_TRACKS):
    """True if `root` holds a finished dataset made with exactly these settings."""
    marker = Path(root) / MARKER
    return marker.exists() and yaml.safe_load(marker.read_text()) == marker_for(sample_rate, seed, num_tracks)


def write_track(folder, stems, score, sample_rate):
    """One Slakh-style track folder: mix.flac, stems/Sxx.flac, metadata.yaml."""
    write_audio(folder / "mix.flac", stems["mix"], sample_rate)
    metadata = {"audio_dir": "stems", "stems": {},
                "synth": {"key": score.key, "scale": score.scale, "bpm": round(score.bpm, 3),  # not in Slakh
                          "chords": [int(c) for c in score.chords]}}
    for stem_id, (name, inst_class, is_drum, program_num, program_name) in STEM_METADATA.items():
        write_audio(folder / "stems" / f"{stem_id}.flac", stems[name], sample_rate)
        metadata["stems"][stem_id] = {"inst_class": inst_class, "is_drum": is_drum, "audio_rendered": True,
                                      "program_num": program_num, "midi_program_name": program_name,
                                      "plugin_name": "synth"}
    with atomic_write(folder / "metadata.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(metadata, sort_keys=True))


def write_synthetic_dataset(root, sample_rate=16000, seed=0, num_tracks=DEFAULT_NUM_TRACKS):
    """Write the dataset to `root` (if not already there) and return `root`.

    Everything is built in a temporary sibling folder that is renamed onto `root` at the end, so
    an interrupted run never leaves half a dataset. A finished dataset made with other settings
    (or by an older generator) is replaced; a folder that is not ours is never touched.
    """
    root = Path(root)
    if is_complete(root, sample_rate, seed, num_tracks):
        return root
    if root.exists() and not (root / MARKER).exists():
        raise UserError(f"{root}: exists but is not a synthetic dataset written by synth.py; "
                        "remove it or choose another folder")
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        number = 1
        for split_index, (split, count) in enumerate(zip(SPLITS, num_tracks)):
            for i in range(count):
                rng = np.random.default_rng([seed, split_index, i])
                score = compose(rng)
                stems = render(score, rng, sample_rate)
                write_track(tmp / split / f"Track{number:05d}", stems, score, sample_rate)
                number += 1
        (tmp / MARKER).write_text(yaml.safe_dump(marker_for(sample_rate, seed, num_tracks), sort_keys=True))
        if root.exists():  # an outdated dataset of ours: move it aside, then delete it
            old = root.with_name(f".{root.name}.{os.getpid()}.old")
            os.replace(root, old)
            shutil.rmtree(old)
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished the same dataset first
            if not is_complete(root, sample_rate, seed, num_tracks):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
