"""Each speaker's running norm of a cue, so a loud talker is not read as angry from the first word."""
import math
from dataclasses import dataclass


#: z-scores saturate softly towards this bound: one wild cue (a pitch-tracking slip) cannot
#: swamp the others, yet a further step along a cue still moves the reading the same way.
Z_LIMIT = 3.0


@dataclass
class Norm:
    """A prior (population mean and spread) that the speaker's own values take over as they arrive.

    With n observations the mean is (prior_weight·prior + Σx) / (prior_weight + n); the spread
    blends the same way. `prior_mean=None` means no population value makes sense (pitch: it
    depends on the voice), so the first observation sets the norm and z is 0 until there is one.
    """

    prior_mean: float | None
    prior_sd: float
    prior_weight: float = 2.0
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def z(self, value):
        """How many spreads `value` lies from this speaker's norm so far (0 if unknown), softly bounded."""
        if value is None:
            return 0.0
        mean, sd = self.mean_sd()
        if mean is None:
            return 0.0
        return Z_LIMIT * math.tanh((value - mean) / sd / Z_LIMIT)

    def mean_sd(self):
        """The current (mean, spread), or (None, prior_sd) before anything is known."""
        if self.prior_mean is None:
            if self.n == 0:
                return None, self.prior_sd
            weight, prior_mean = 0.0, 0.0
        else:
            weight, prior_mean = self.prior_weight, self.prior_mean
        count = weight + self.n
        mean = (weight * prior_mean + self.total) / count
        if self.n >= 2:
            sample_var = max(self.total_sq / self.n - (self.total / self.n) ** 2, 0.0)
            var = (self.prior_weight * self.prior_sd ** 2 + self.n * sample_var) / (self.prior_weight + self.n)
        else:
            var = self.prior_sd ** 2
        return mean, max(math.sqrt(var), self.prior_sd * 0.5)

    def add(self, value):
        """Fold one observation into the norm."""
        if value is None:
            return
        self.n += 1
        self.total += value
        self.total_sq += value * value


def speaker_norms():
    """Fresh norms for one speaker: pitch in semitones, range in semitones, dBFS, syllables/s."""
    return {
        "pitch_st": Norm(prior_mean=None, prior_sd=2.0),
        "pitch_range_st": Norm(prior_mean=5.0, prior_sd=2.0),
        "loudness_db": Norm(prior_mean=-24.0, prior_sd=4.0),
        "speech_rate": Norm(prior_mean=5.0, prior_sd=1.0),
    }
