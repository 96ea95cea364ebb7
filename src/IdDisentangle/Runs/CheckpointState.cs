namespace IdDisentangle.Runs;

/// <summary>
/// What a checkpoint folder records besides the weights and optimiser states. NormalizedIdentity is true when M was
/// trained on L2-normalised identity codes (as the paper's); it is absent (null) in runs made before that.
/// </summary>
internal sealed record CheckpointState(
    long Step,
    int NanStreak,
    double BestId,
    double BestLandmarks,
    int NotImproved,
    string Identity,
    int IdentityDim,
    string AttrBackbone,
    int AttrInputSize,
    string FaceCrop,
    bool? NormalizedIdentity = null
);
