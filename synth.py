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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy.signal import butter, lfilter, sosfilt

from audio import write_audio
from files import UserError, atomic_write

GENERATOR_VERSION = 1
SPLITS = ("train", "validation", "test")
DEFAULT_NUM_TRACKS = (160, 12, 12)  # (train, validation, test)
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
    key: int  # pitch class of the tonic, 0 = C
    scale: str  # "major" or "minor"
    bpm: float
    chords: list  # scale degree of the chord root in each bar
    notes: dict  # instrument -> list[Note]
    duration: float  # seconds, release tail included

    def pitch_classes(self):
        """The seven pitch classes of the track's scale."""
        return {(self.key + step) % 12 for step in SCALES[self.scale]}


def midi_pitch(key, scale, degree, octave):
    """MIDI number of scale degree `degree` (may exceed 6 or be negative) above the tonic in `octave`."""
    return 12 * (octave + 1) + key + SCALES[scale][degree % 7] + 12 * (degree // 7)


def midi_to_hz(pitch):
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


# ---- composition: one- or two-bar patterns that repeat over the chords, with variations ----

@dataclass
class Plan:
    """What every instrument of a track shares while it is being composed."""
    key: int
    scale: str
    chords: list  # scale degree of each bar's chord root
    bar_seconds: float
    motif_bars: int  # the patterns repeat every 1 or 2 bars
    vary: float  # probability that one event of a repetition is changed

    def pitch(self, degree, octave):
        return midi_pitch(self.key, self.scale, degree, octave)


def rhythm(rng, grid, density):
    """Onset steps of one bar on a grid of `grid` sixteenths: always the downbeat, beats likelier."""
    return [step for step in range(0, STEPS_PER_BAR, grid)
            if step == 0 or rng.random() < density * (1.6 if step % 4 == 0 else 0.8)]


def make_pattern(rng, plan, grid, density, pick_tone):
    """`plan.motif_bars` bars, each a list of events (step, tone, velocity); tone = pick_tone(step)."""
    return [[(step, pick_tone(step), rng.uniform(0.6, 1.0)) for step in rhythm(rng, grid, density)]
            for _ in range(plan.motif_bars)]


def realise(rng, plan, pattern, to_pitches, mutate, legato, first_bar=0):
    """Play the pattern bar after bar over the chords; each event mutates with probability plan.vary.

    `to_pitches(chord_root, tone)` gives the MIDI pitches of one event (a chord gives several, in
    order). A note lasts until the next onset of the pattern, times `legato`.
    """
    step_seconds = plan.bar_seconds / STEPS_PER_BAR
    notes = []
    for bar in range(first_bar, len(plan.chords)):
        events = pattern[bar % len(pattern)]
        for i, (step, tone, velocity) in enumerate(events):
            if rng.random() < plan.vary:  # the variation that keeps a repetition from being exact
                tone = mutate(tone)
            next_step = events[i + 1][0] if i + 1 < len(events) else STEPS_PER_BAR
            onset = max(0.0, (bar * STEPS_PER_BAR + step) * step_seconds + rng.normal(0.0, 0.004))  # humanise
            for pitch in to_pitches(plan.chords[bar], tone):
                notes.append(Note(onset, (next_step - step) * step_seconds * legato, pitch, velocity))
    return notes


def random_chord_tone(rng):
    return lambda tone: int(rng.integers(len(CHORD_TONES)))


def compose_bass(rng, plan):
    """Root on the downbeat, then roots, thirds, fifths and octaves (indices into CHORD_TONES) on eighths."""
    octave = 2 if plan.key < 5 else 1
    pattern = make_pattern(rng, plan, 2, rng.uniform(0.3, 0.6),
                           lambda step: 0 if step == 0 else int(rng.choice(4, p=[0.5, 0.1, 0.3, 0.1])))
    return realise(rng, plan, pattern, lambda root, tone: [plan.pitch(root + CHORD_TONES[tone], octave)],
                   random_chord_tone(rng), rng.uniform(0.6, 0.95))


def compose_guitar(rng, plan, first_bar):
    """An arpeggio of chord tones on eighths or sixteenths, or strummed chords."""
    if rng.random() < 0.5:
        grid = int(rng.choice([1, 2]))
        pattern = make_pattern(rng, plan, grid, 0.45 if grid == 1 else 0.6,
                               lambda step: int(rng.integers(len(CHORD_TONES))))
        return realise(rng, plan, pattern, lambda root, tone: [plan.pitch(root + CHORD_TONES[tone], 3)],
                       random_chord_tone(rng), rng.uniform(1.5, 3.0), first_bar)
    strum = rng.uniform(0.008, 0.025)  # seconds between strings
    pattern = make_pattern(rng, plan, 2, rng.uniform(0.3, 0.5), lambda step: 0)
    notes = realise(rng, plan, pattern, lambda root, tone: [plan.pitch(root + t, 3) for t in CHORD_TONES],
                    lambda tone: tone, rng.uniform(0.7, 1.0), first_bar)
    for i, note in enumerate(notes):  # each strum is len(CHORD_TONES) notes in a row: stagger them
        note.onset += (i % len(CHORD_TONES)) * strum
    return notes


def compose_piano(rng, plan, first_bar):
    """Block triads, plus (in 70% of tracks) a melody: a bounded walk on the scale, chord tones on beats."""
    octave = 4 if plan.key < 6 else 3
    pattern = make_pattern(rng, plan, int(rng.choice([2, 4, 8])), 0.4, lambda step: 0)
    notes = realise(rng, plan, pattern, lambda root, tone: [plan.pitch(root + t, octave) for t in (0, 2, 4)],
                    lambda tone: tone, rng.uniform(0.8, 1.0), first_bar)
    if rng.random() < 0.7:
        degree = [0]  # degrees are relative to the chord root, so the motif follows the harmony

        def next_degree(step):
            move = rng.choice(CHORD_TONES) if step % 4 == 0 else degree[0] + rng.choice([-2, -1, 1, 2])
            degree[0] = int(np.clip(move, -3, 6))
            return degree[0]
        melody = make_pattern(rng, plan, 2, 0.5, next_degree)
        octave = 5 if plan.key < 4 else 4
        notes += realise(rng, plan, melody, lambda root, degree: [plan.pitch(root + degree, octave)],
                         lambda degree: degree + int(rng.choice([-1, 1])), 0.9)
    return notes


def compose_drums(rng, plan):
    """Kick on 1 and 3 plus extras, snare on 2 and 4, hats on 16ths, 8ths or 4ths, phrase-end fills."""
    hat_grid = int(rng.choice([1, 2, 2, 4]))
    kicks = [0, 8] + [step for step in (3, 6, 10, 14) if rng.random() < 0.3]
    bar_events = ([(step, KICK, 1.0) for step in kicks] + [(step, SNARE, 0.9) for step in (4, 12)]
                  + [(step, CLOSED_HAT, 0.8 if step % 4 == 0 else 0.5) for step in range(0, 16, hat_grid)])
    if rng.random() < 0.5:
        bar_events.append((14, OPEN_HAT, 0.6))
    notes = []
    for bar in range(len(plan.chords)):
        events = [event for event in bar_events if rng.random() > plan.vary / 2]  # drop one now and then
        if bar % 4 == 3 and rng.random() < 0.4:  # a snare fill at the end of a four-bar phrase
            events += [(step, SNARE, 0.5 + 0.1 * (step - 12)) for step in (13, 14, 15)]
        for step, pitch, velocity in events:
            onset = (bar + step / STEPS_PER_BAR) * plan.bar_seconds + rng.normal(0.0, 0.003)
            notes.append(Note(max(onset, 0.0), 0.25, pitch, velocity * rng.uniform(0.85, 1.0)))
    return notes


def compose(rng):
    """Draw a key, scale, tempo (80-140 bpm), four-chord progression and patterns; return the Score."""
    key, scale = int(rng.integers(12)), str(rng.choice(list(SCALES)))
    bpm = float(rng.uniform(80, 140))
    bar_seconds = 4 * 60.0 / bpm
    num_bars = max(3, round(rng.uniform(8.5, 11.0) / bar_seconds))  # about 8-12 s
    progression = PROGRESSIONS[scale][rng.integers(len(PROGRESSIONS[scale]))]
    plan = Plan(key, scale, [progression[bar % 4] for bar in range(num_bars)], bar_seconds,
                motif_bars=int(rng.choice([1, 2])), vary=rng.uniform(0.03, 0.15))
    late = int(rng.choice(3, p=[0.6, 0.2, 0.2]))  # 1: guitar, 2: piano comes in at the second bar
    notes = {"bass": compose_bass(rng, plan), "drums": compose_drums(rng, plan),
             "guitar": compose_guitar(rng, plan, first_bar=int(late == 1)),
             "piano": compose_piano(rng, plan, first_bar=int(late == 2))}
    return Score(key, scale, bpm, plan.chords, notes, num_bars * bar_seconds + RELEASE_SECONDS)


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
    decay_seconds = decay * (261.6 / frequency) ** 0.3 / (1.0 + 0.6 * (k - 1))
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = amplitude[:, None] * np.exp(-t / decay_seconds[:, None]) * np.sin(
        2 * np.pi * partials[:, None] * t + phases[: len(k), None])  # (K, T)
    return x.sum(axis=0)


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
    """One kick, three snares, four closed and one open hi-hat, all drawn from per-track ranges."""
    def t(seconds):
        return np.arange(int(seconds * sample_rate)) / sample_rate

    def noise(seconds):
        return rng.standard_normal(int(seconds * sample_rate))

    nyquist = sample_rate / 2
    kick_start, kick_end, kick_decay = rng.uniform(120, 200), rng.uniform(40, 60), rng.uniform(0.12, 0.3)
    tk = t(0.5)
    frequency = kick_end + (kick_start - kick_end) * np.exp(-tk / 0.04)  # pitch sweep down
    kick = np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate) * np.exp(-tk / kick_decay)
    snare_band = butter(2, [min(1000, 0.4 * nyquist) / nyquist, min(rng.uniform(5000, 8000), 0.9 * nyquist) / nyquist],
                        btype="band", output="sos")
    snare_tone, snare_decay = rng.uniform(160, 240), rng.uniform(0.08, 0.2)
    ts = t(0.35)
    snares = [(0.7 * sosfilt(snare_band, noise(0.35)) + 0.5 * np.sin(2 * np.pi * snare_tone * ts))
              * np.exp(-ts / snare_decay) for _ in range(3)]
    hat_high = butter(4, min(rng.uniform(5000, 8000), 0.8 * nyquist) / nyquist, btype="high", output="sos")
    closed_decay = rng.uniform(0.015, 0.05)
    th = t(0.6)
    closed = [sosfilt(hat_high, noise(0.6)) * np.exp(-th / closed_decay) for _ in range(4)]
    kit = {KICK: [kick], SNARE: snares, CLOSED_HAT: closed,
           OPEN_HAT: [sosfilt(hat_high, noise(0.6)) * np.exp(-th / rng.uniform(0.15, 0.3))]}
    return {pitch: [s / np.abs(s).max() for s in sounds] for pitch, sounds in kit.items()}


# ---- rendering ----

def render(score, rng, sample_rate):
    """Play the score with per-track timbres; return float32 stems and their sum `mix` (peak <= 0.9)."""
    n = int(round(score.duration * sample_rate))
    stems = {name: np.zeros(n) for name in ("bass", "drums", "guitar", "piano")}

    def index(seconds):
        return int(round(seconds * sample_rate))

    # bass: naive sawtooth, enveloped per note, the whole line low-passed once
    for note in score.notes["bass"]:
        t = np.arange(index(note.duration + 0.05)) / sample_rate
        saw = 2.0 * ((midi_to_hz(note.pitch) * t) % 1.0) - 1.0
        add_at(stems["bass"], note.velocity * saw * envelope(len(t), sample_rate, note.duration), index(note.onset))
    cutoff = min(rng.uniform(300, 1200), 0.45 * sample_rate)
    stems["bass"] = sosfilt(butter(2, cutoff / (sample_rate / 2), output="sos"), stems["bass"])

    t60, brightness = rng.uniform(0.8, 3.0), rng.uniform(0.0, 0.6)
    for note in score.notes["guitar"]:
        seconds = min(note.duration, 2.0) + 0.06
        string = pluck(midi_to_hz(note.pitch), seconds, sample_rate, rng, t60, brightness)
        add_at(stems["guitar"], note.velocity * string * envelope(len(string), sample_rate, seconds - 0.06, 0.001),
               index(note.onset))

    inharmonicity, decay, tone = rng.uniform(1e-4, 1e-3), rng.uniform(0.4, 1.5), rng.uniform(0.3, 0.7)
    cache = {}  # pitch -> tone, rendered once per track at the longest length needed (+ release)
    longest = max([note.duration for note in score.notes["piano"]], default=0.0) + 0.1
    for note in score.notes["piano"]:
        if note.pitch not in cache:
            cache[note.pitch] = piano_tone(midi_to_hz(note.pitch), longest, sample_rate, inharmonicity,
                                           decay, tone, rng.uniform(0, 2 * np.pi, 10))
        sound = cache[note.pitch][: index(note.duration + 0.1)]
        add_at(stems["piano"], note.velocity * sound * envelope(len(sound), sample_rate, note.duration, 0.004, 0.08),
               index(note.onset))

    kit = drum_kit(rng, sample_rate)
    for note in score.notes["drums"]:
        sounds = kit[note.pitch]
        add_at(stems["drums"], note.velocity * sounds[rng.integers(len(sounds))], index(note.onset))

    # per-stem gains: equal loudness (RMS 0.1), then -9..0 dB at random; then scale for the peak
    for name, x in stems.items():
        stems[name] = x * 0.1 / (np.sqrt(np.mean(x**2)) + 1e-9) * 10 ** (rng.uniform(-9, 0) / 20)
    mix = sum(stems.values())
    peak = max(np.abs(mix).max() / rng.uniform(0.6, 0.9), max(np.abs(x).max() for x in stems.values()) / 0.95)
    stems = {name: (x / peak).astype(np.float32) for name, x in stems.items()}
    stems["mix"] = (mix / peak).astype(np.float32)
    return stems


def generate_track(rng, sample_rate):
    """Compose and render one track: {bass, drums, guitar, piano, mix} -> float32 (T,) arrays."""
    return render(compose(rng), rng, sample_rate)


# ---- the dataset on disk, in Slakh2100's layout ----

STEM_METADATA = {  # Slakh stem id -> (our stem, metadata fields)
    "S00": ("bass", {"inst_class": "Bass", "is_drum": False, "program_num": 33,
                     "midi_program_name": "Electric Bass (finger)"}),
    "S01": ("drums", {"inst_class": "Drums", "is_drum": True, "program_num": 0,
                      "midi_program_name": "Drums"}),
    "S02": ("guitar", {"inst_class": "Guitar", "is_drum": False, "program_num": 25,
                       "midi_program_name": "Acoustic Guitar (steel)"}),
    "S03": ("piano", {"inst_class": "Piano", "is_drum": False, "program_num": 0,
                      "midi_program_name": "Acoustic Grand Piano"}),
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
    metadata = {"audio_dir": "stems", "synth": {"key": int(score.key), "scale": score.scale,
                                                "bpm": round(score.bpm, 3), "chords": [int(c) for c in score.chords]},
                "stems": {}}
    for stem_id, (name, fields) in STEM_METADATA.items():
        write_audio(folder / "stems" / f"{stem_id}.flac", stems[name], sample_rate)
        metadata["stems"][stem_id] = {**fields, "audio_rendered": True, "plugin_name": "synth"}
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
                write_track(tmp / split / f"Track{number:05d}", render(score, rng, sample_rate), score, sample_rate)
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
