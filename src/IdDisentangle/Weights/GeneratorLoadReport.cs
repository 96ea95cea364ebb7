namespace IdDisentangle.Weights;

/// <summary>What loading a generator file found, for the user to see.</summary>
internal sealed record GeneratorLoadReport(
    string File,
    string Kind,
    string Layout,
    bool MeanLatentFromFile,
    IReadOnlyList<string> Notes
);
