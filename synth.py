"""The embedded default dataset: composed band tracks rendered with sampled instruments, mixed like Slakh2100.

Slakh2100 (Manilow et al., "Cutting Music Source Separation Some Slakh", WASPAA 2019,
arXiv:1909.08494) renders MIDI with sampled instruments, one file per instrument, into mixtures that
hold more than the four benchmark stems. This file does the same on a small scale with pip packages:
`composer.py` writes the score; per track and part a General MIDI program is drawn from the part's
class (PROGRAMS); each part is rendered alone by `midirenderer` (MIDI + SF2 bytes -> WAV bytes) with
TimGM6mb.sf2 from the `pretty_midi` wheel (or $AUDIO_MLM_SOUNDFONT), loudness-normalised (BS.1770,
`pyloudnorm`) to its own target, rounded to 16 bits and summed, so the mixture file is exactly the
sum of the stem files. The layout and metadata keys are Slakh2100's (`data.py` reads them). Track i
of split s draws from `np.random.default_rng([seed, s, i])`: the same seed gives the same bytes.
"""
import hashlib
import io
import os
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from scipy.signal import resample_poly

from composer import PARTS, compose
from files import UserError, process_exists

GENERATOR_VERSION = 2  # part of the cache folder's name (data.default_data_dir): a new version never reuses an old cache
SPLITS = ("train", "validation", "test")
DEFAULT_NUM_TRACKS = (200, 10, 20)  # (train, validation, test)
MARKER = "synthetic_dataset.yaml"  # written last; its presence means the dataset is complete
LSB = 1 / 32768  # one step of a 16-bit file
MIX_PEAK = 0.9  # the common gain keeps the mixture's peak at or below this
LOUDNESS_LUFS = (-24.0, -16.0)  # each stem's loudness target is drawn from this range

# General MIDI class names as Slakh2100's metadata spells them, one per 8 programs
GM_CLASSES = ("Piano", "Chromatic Percussion", "Organ", "Guitar", "Bass", "Strings", "Strings (continued)",
              "Brass", "Reed", "Pipe", "Synth Lead", "Synth Pad", "Synth Effects", "Ethnic", "Percussive",
              "Sound Effects")
PROGRAMS = {  # part -> the General MIDI programs it draws from
    "bass": list(range(32, 40)),
    "guitar": list(range(24, 32)),
    "piano": list(range(0, 8)),
    "pad": [16, 17, 18, 19, 20, 40, 41, 42, 48, 49, 50, 51, 52, 88, 89, 90, 91, 94, 95],  # organs, strings, pads
    "lead": list(range(56, 88)),  # brass, reeds, pipes, synth leads
    "drums": [0, 8, 16, 24, 25, 40, 48],  # the drum kits (standard, room, power, electronic, TR-808, brush, orchestra)
}


# ---- rendering one part with a SoundFont ----

def soundfont_path():
    """The SoundFont to render with: $AUDIO_MLM_SOUNDFONT, else the GM SoundFont in the pretty_midi wheel."""
    if os.environ.get("AUDIO_MLM_SOUNDFONT"):
        path = Path(os.environ["AUDIO_MLM_SOUNDFONT"])
    else:
        try:
            import pretty_midi
        except ImportError:
            raise UserError("pretty_midi is not installed, so the default dataset cannot be rendered "
                            "(pip install -r requirements.txt)") from None
        path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise UserError(f"{path}: no such SoundFont (set AUDIO_MLM_SOUNDFONT to a .sf2 file)")
    return path


def soundfont_identity(path):
    """Name and SHA-1 of a SoundFont: a dataset rendered with another one is another dataset."""
    return {"soundfont": path.name, "soundfont_sha1": hashlib.sha1(path.read_bytes()).hexdigest()}


SOUNDFONT = {}  # path -> bytes, read once per process


def load_soundfont(path):
    if path not in SOUNDFONT:
        SOUNDFONT[path] = path.read_bytes()
    return SOUNDFONT[path]


def part_instrument(notes, program, is_drum):
    """A pretty_midi Instrument playing `notes` (composer.Note) with a General MIDI program."""
    import pretty_midi
    instrument = pretty_midi.Instrument(program=program, is_drum=is_drum)
    for note in notes:
        velocity = int(np.clip(round(20 + 107 * note.velocity), 1, 127))
        instrument.notes.append(pretty_midi.Note(velocity, note.pitch, note.onset, note.onset + note.duration))
    return instrument


def midi_bytes(instruments, bpm, duration):
    """A standard MIDI file with these instruments; a last event at `duration` s sets its length."""
    import pretty_midi
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    midi.instruments = list(instruments)
    # the renderer stops at the last event, so a harmless controller (sustain off) marks the end
    midi.instruments[0].control_changes.append(pretty_midi.ControlChange(64, 0, duration))
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def render_midi(midi, soundfont, sample_rate, length):
    """Render MIDI bytes with the SoundFont; mono float64 (length,) at `sample_rate`."""
    try:
        import midirenderer
    except ImportError:
        raise UserError("midirenderer is not installed, so the default dataset cannot be rendered "
                        "(pip install -r requirements.txt)") from None
    try:
        wav = midirenderer.render_wave_from(load_soundfont(soundfont), midi)
        x, rate = sf.read(io.BytesIO(wav), dtype="float64", always_2d=True)
    except Exception as error:  # a corrupt SoundFont surfaces here
        raise UserError(f"{soundfont}: could not render with this SoundFont ({error})") from None
    g = np.gcd(int(rate), int(sample_rate))
    x = resample_poly(x.mean(axis=1), int(sample_rate) // g, int(rate) // g)  # mono, then the model rate
    out = np.zeros(length)
    out[: min(length, len(x))] = x[:length]
    return out


# ---- one track: programs, renders, loudness, mix ----

def gm_class(program, is_drum):
    return "Drums" if is_drum else GM_CLASSES[program // 8]


def render_track(rng, sample_rate, soundfont):
    """Compose and render one track.

    Returns (score, parts, stems): parts maps each part that plays to its metadata (program,
    class, loudness target); stems maps part names and "mix" to int16 arrays of one length, and
    the mix is exactly the sum of the stems.
    """
    import pyloudnorm
    score = compose(rng)
    length = int(round(score.duration * sample_rate))
    meter = pyloudnorm.Meter(sample_rate)  # ITU-R BS.1770-4 K-weighted integrated loudness
    parts, audio = {}, {}
    for part in [p for p in PARTS if p in score.notes]:
        is_drum = part == "drums"
        program = int(rng.choice(PROGRAMS[part]))
        instrument = part_instrument(score.notes[part], program, is_drum)
        x = render_midi(midi_bytes([instrument], score.bpm, score.duration), soundfont, sample_rate, length)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyloudnorm warns about peaks above 1 before normalising
            loudness = meter.integrated_loudness(x)
        if not np.isfinite(loudness):  # too quiet to measure: leave the part out
            continue
        target = float(rng.uniform(*LOUDNESS_LUFS))
        audio[part] = x * 10 ** ((target - loudness) / 20)  # loudness normalisation
        parts[part] = {"program": program, "is_drum": is_drum, "instrument": instrument, "target_lufs": target}
    # one common gain so the mix does not clip: stems rounded to 16 bits first, then summed exactly
    mix = sum(audio.values())
    gain = min(1.0, MIX_PEAK / max(np.abs(mix).max(), 1e-9))
    stems = {part: np.round(x * gain / LSB).astype(np.int32) for part, x in audio.items()}
    stems = {part: np.clip(x, -32767, 32767) for part, x in stems.items()}
    stems["mix"] = np.clip(sum(stems[part] for part in parts), -32767, 32767)
    for info in parts.values():
        info["loudness_lufs"] = info["target_lufs"] + 20 * np.log10(gain)
    return score, parts, {name: x.astype(np.int16) for name, x in stems.items()}


def generate_track(rng, sample_rate, soundfont=None):
    """One track as float32 arrays: {part: (T,), "mix": (T,)}, only the parts that play."""
    _, _, stems = render_track(rng, sample_rate, soundfont or soundfont_path())
    return {name: x.astype(np.float32) * np.float32(LSB) for name, x in stems.items()}


# ---- the dataset on disk, in Slakh2100's layout ----

def write_track(folder, score, parts, stems, sample_rate):
    """One Slakh-style track folder: mix.flac, stems/Sxx.flac, MIDI/Sxx.mid, all_src.mid, metadata.yaml."""
    import pretty_midi
    for sub in ("stems", "MIDI"):
        (folder / sub).mkdir(parents=True)
    sf.write(folder / "mix.flac", stems["mix"], sample_rate, subtype="PCM_16")
    metadata = {"audio_dir": "stems", "midi_dir": "MIDI", "stems": {}, "normalized": True,
                "synth": {"key": score.key, "scale": score.scale, "bpm": round(score.bpm, 3),  # not in Slakh
                          "chords": [int(c) for c in score.chords], "generator_version": GENERATOR_VERSION}}
    for number, (part, info) in enumerate(parts.items()):
        stem_id = f"S{number:02d}"
        sf.write(folder / "stems" / f"{stem_id}.flac", stems[part], sample_rate, subtype="PCM_16")
        (folder / "MIDI" / f"{stem_id}.mid").write_bytes(midi_bytes([info["instrument"]], score.bpm, score.duration))
        metadata["stems"][stem_id] = {
            "inst_class": gm_class(info["program"], info["is_drum"]), "is_drum": info["is_drum"],
            "program_num": info["program"], "audio_rendered": True, "midi_saved": True,
            "midi_program_name": "Drums" if info["is_drum"] else pretty_midi.program_to_instrument_name(info["program"]),
            "plugin_name": "TimGM6mb.sf2 (midirenderer)", "part": part,  # "part": ours, not Slakh's
            "loudness_lufs": round(float(info["loudness_lufs"]), 3)}
    (folder / "all_src.mid").write_bytes(midi_bytes([info["instrument"] for info in parts.values()],
                                                    score.bpm, score.duration))
    (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=True))


def marker_for(sample_rate, seed, num_tracks, soundfont):
    return {"generator": "audio-mlm synth.py", "version": GENERATOR_VERSION, "sample_rate": int(sample_rate),
            "seed": int(seed), "num_tracks": [int(n) for n in num_tracks], **soundfont_identity(soundfont)}


def is_complete(root, sample_rate=16000, seed=0, num_tracks=DEFAULT_NUM_TRACKS):
    """True if `root` holds a finished dataset made with exactly these settings (and SoundFont)."""
    marker = Path(root) / MARKER
    return marker.exists() and yaml.safe_load(marker.read_text()) == marker_for(
        sample_rate, seed, num_tracks, soundfont_path())


def make_track(job):
    """Render and write one track (a process pool's unit of work): job = (folder, seed, split, i, rate, sf2)."""
    folder, seed, split_index, i, sample_rate, soundfont = job
    rng = np.random.default_rng([seed, split_index, i])
    score, parts, stems = render_track(rng, sample_rate, soundfont)
    write_track(folder, score, parts, stems, sample_rate)


def remove_stale_builds(root):
    """Delete the half-built `.<name>.<pid>.tmp` folders that killed runs (kill -9) left beside `root`."""
    for folder in root.parent.glob(f".{root.name}.*.tmp"):
        pid = folder.name[len(root.name) + 2:-len(".tmp")]
        if pid.isdigit() and not process_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def write_synthetic_dataset(root, sample_rate=16000, seed=0, num_tracks=DEFAULT_NUM_TRACKS, workers=None):
    """Write the dataset to `root` (if not already there) and return `root`.

    Everything is built in a temporary sibling folder that is renamed onto `root` at the end, and
    the marker is written last, so an interrupted run (Ctrl-C, kill -9, a render error) never
    leaves a dataset that a later run trusts. A finished dataset made with other settings (or by
    an older generator, or another SoundFont) is replaced; a folder that is not ours is never touched.
    Tracks are rendered by `workers` processes (default: one per core, one for a handful of tracks).
    """
    root = Path(root)
    soundfont = soundfont_path()
    if is_complete(root, sample_rate, seed, num_tracks):
        return root
    if root.exists() and not (root / MARKER).exists():
        raise UserError(f"{root}: exists but is not a synthetic dataset written by synth.py; "
                        "remove it or choose another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(root)
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    jobs, number = [], 1
    for split_index, (split, count) in enumerate(zip(SPLITS, num_tracks)):
        for i in range(count):
            jobs.append((tmp / split / f"Track{number:05d}", seed, split_index, i, sample_rate, soundfont))
            number += 1
    workers = workers or (1 if len(jobs) < 8 else min(4, os.cpu_count() or 1))
    try:
        if workers == 1:
            for job in jobs:
                make_track(job)
        else:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(make_track, jobs, chunksize=4))
        (tmp / MARKER).write_text(yaml.safe_dump(marker_for(sample_rate, seed, num_tracks, soundfont),
                                                 sort_keys=True))
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


# ---- command line: another seed, split sizes or SoundFont (a held-out set of other timbres) ----

def main():
    from cli import ArgumentParser
    parser = ArgumentParser(description="Render the embedded dataset (or a variant of it) to a folder, in Slakh2100's layout.")
    parser.add_argument("out", help="folder to write (created; an older dataset of ours there is replaced)")
    parser.add_argument("--seed", type=int, default=0, help="composition seed (the default dataset uses 0)")
    parser.add_argument("--tracks", default=",".join(map(str, DEFAULT_NUM_TRACKS)),
                        help="tracks in train,validation,test (default %(default)s)")
    parser.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the files in Hz")
    parser.add_argument("--soundfont", default=None,
                        help="a General MIDI .sf2 to render with (default: TimGM6mb.sf2 from the pretty_midi wheel)")
    args = parser.parse_args()
    try:
        num_tracks = tuple(int(n) for n in args.tracks.split(","))
    except ValueError:
        num_tracks = ()
    if len(num_tracks) != 3 or min(num_tracks) < 0 or sum(num_tracks) == 0:
        raise UserError(f"--tracks must be three counts such as 0,0,20, got '{args.tracks}'")
    if args.sample_rate < 8000:
        raise UserError(f"--sample-rate must be at least 8000, got {args.sample_rate}")
    if args.soundfont:
        os.environ["AUDIO_MLM_SOUNDFONT"] = args.soundfont
    start = time.time()
    root = write_synthetic_dataset(args.out, args.sample_rate, args.seed, num_tracks)
    print(f"{root}: {sum(num_tracks)} tracks rendered with {soundfont_path().name} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    from cli import run_main
    run_main(main)
