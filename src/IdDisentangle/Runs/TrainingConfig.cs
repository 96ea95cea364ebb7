using System.Text.Json.Serialization;
using IdDisentangle.Networks;

namespace IdDisentangle.Runs;

/// <summary>
/// Every setting of a training run, in one object (saved as the run's config.json). Defaults are the paper's
/// (from its released code).
/// </summary>
internal sealed record TrainingConfig
{
    // ---- run and data ----
    public string Name { get; init; } = "run";
    public string DatasetDir { get; init; } = "";
    public string GeneratorPath { get; init; } = "";
    public string ResultsDir { get; init; } = "results";
    public int BatchSize { get; init; } = 6;

    /// <summary>Total step count to reach (a resumed run continues up to it).</summary>
    public long NumSteps { get; init; } = 100_000;

    /// <summary>Indices below this train; the rest validate.</summary>
    public long TrainDataSize { get; init; } = 70_000;
    public int TestFrequency { get; init; } = 1000;

    /// <summary>Validation batches (of BatchSize) per validation, as the paper's test_size.</summary>
    public int TestSize { get; init; } = 50;

    /// <summary>
    /// Validate with real attribute images from the data set's real/ folder (the paper's test_real_attr); without
    /// such a folder (or when false) other held-out generated images serve.
    /// </summary>
    public bool TestRealAttr { get; init; } = true;

    /// <summary>Step n is a cross step (I_attr another image) when n % CrossFrequency == 0, else I_attr =
    /// I_id.</summary>
    public int CrossFrequency { get; init; } = 3;
    public long Seed { get; init; }

    /// <summary>
    /// Stop once the not-improved counter exceeds this (0: never). The paper's counter: a landmark improvement resets
    /// it, then an identity improvement resets it, no identity improvement adds one.
    /// </summary>
    public int NotImprovedExit { get; init; }

    /// <summary>Steps between the "last" checkpoints (and at the end): what a killed run can lose at most.</summary>
    public int CheckpointEvery { get; init; } = 500;

    // ---- objective ----
    public bool IdLoss { get; init; } = true;
    public bool LandmarksLoss { get; init; } = true;
    public bool ReconstructionLoss { get; init; } = true;
    public bool AdversarialLoss { get; init; } = true;
    public double LambdaId { get; init; } = 1.0;
    public double LambdaLnd { get; init; } = 0.001;
    public double LambdaRec { get; init; } = 0.02;

    /// <summary>Weight of the mapper's adversarial term in the unified objective.</summary>
    public double LambdaGan { get; init; } = 0.5;

    [JsonConverter(typeof(JsonStringEnumConverter))]
    public PixelLoss PixelLoss { get; init; } = PixelLoss.MsSsimL1;

    /// <summary>One optimiser for everything and D_W every step (the paper's alternative schedule).</summary>
    public bool Unified { get; init; }
    public double R1Gamma { get; init; } = 10.0;

    // ---- optimisation ----
    /// <summary>Adam learning rate of E_attr and M; 0 picks the paper's: 5e-5 up to 256 px, 1e-5 above.</summary>
    public double LearningRate { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Keras's Adam epsilon (added to the uncorrected sqrt(v); see KerasAdam).</summary>
    public double AdamEpsilon { get; init; } = 1e-7;

    /// <summary>M's adversarial optimiser runs at this fraction of the learning rate.</summary>
    public double MapperAdversarialLrScale { get; init; } = 0.1;
    public double DiscriminatorLrScale { get; init; } = 0.4;

    // ---- networks ----
    public string Identity { get; init; } = IdentityNetwork.FaceApi.Name;
    public string? IdentityWeights { get; init; }
    public string AttrBackbone { get; init; } = AttributeBackbone.InceptionV3.Name;

    /// <summary>Resolution the attribute backbone sees (0: its native 299 / 224).</summary>
    public int AttrInputSize { get; init; }

    /// <summary>
    /// Resolution the method works at: the generator's images area-downsampled to it (0: the generator's own), so
    /// that a 1024 generator trains and infers at the paper's 256.
    /// </summary>
    public int OutputSize { get; init; }

    /// <summary>Crop of the face networks' inputs: "ffhq" for FFHQ-aligned faces, "none" for the whole image.</summary>
    public string FaceCrop { get; init; } = "ffhq";
    public string? ModelsDir { get; init; }
    public string? Device { get; init; }
    public int Threads { get; init; }

    /// <summary>The networks these settings choose, their names parsed through the registry.</summary>
    public NetworkChoice Networks() =>
        new(
            GeneratorPath,
            IdentityNetwork.Parse(Identity),
            IdentityWeights,
            AttributeBackbone.Parse(AttrBackbone),
            AttrInputSize,
            FaceCrop
        );

    public double EffectiveLearningRate(int resolution) =>
        LearningRate > 0 ? LearningRate
        : resolution <= 256 ? 5e-5
        : 1e-5;

    /// <summary>The run folder, RESULTS_DIR/NAME.</summary>
    public string RunDir => Path.Combine(ResultsDir, Name);
}
