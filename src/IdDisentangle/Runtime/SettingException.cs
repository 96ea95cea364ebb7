namespace IdDisentangle.Runtime;

/// <summary>The settings whose bad values the library reports by concept; front ends name them their own way.</summary>
internal enum Setting
{
    Device,
    Shard,
    NumImages,
    BatchSize,
    InterpolationSteps,
    PixelLoss,
    ReleaseFolder,
    ReleaseChoice,
    PackageFolder,
    Photos,
    InputFolder,
    OutputSize,
    VideoWindow,
    WSmoothing,
    Precision,
}

/// <summary>
/// A setting whose value cannot be used: <see cref="Setting"/> says which, <see cref="Value"/> what was given and
/// <see cref="Problem"/> what is wrong with it. The message reads "device cuda: CUDA is not available ..."; the CLI
/// puts its flag in place of the concept ("--device cuda: ...").
/// </summary>
internal class SettingException(Setting setting, string? value, string problem)
    : ArgumentException(Format(Describe(setting), value, problem))
{
    public Setting Setting { get; } = setting;
    public string? Value { get; } = value;
    public string Problem { get; } = problem;

    /// <summary>The message with <paramref name="name"/> for the setting.</summary>
    public string MessageNaming(string name) => Format(name, Value, Problem);

    static string Format(string name, string? value, string problem) =>
        string.IsNullOrEmpty(value) ? $"{name}: {problem}" : $"{name} {value}: {problem}";

    /// <summary>The setting in words.</summary>
    public static string Describe(Setting setting) =>
        setting switch
        {
            Setting.Device => "device",
            Setting.Shard => "shard",
            Setting.NumImages => "number of images",
            Setting.BatchSize => "batch size",
            Setting.InterpolationSteps => "interpolation steps",
            Setting.PixelLoss => "pixel loss",
            Setting.ReleaseFolder => "release folder",
            Setting.ReleaseChoice => "release file choice",
            Setting.PackageFolder => "package folder",
            Setting.Photos => "photo folder",
            Setting.InputFolder => "input folder",
            Setting.OutputSize => "output size",
            Setting.VideoWindow => "video window",
            Setting.WSmoothing => "w smoothing",
            Setting.Precision => "precision",
            _ => setting.ToString(),
        };
}

/// <summary>A device that was asked for but cannot be used here.</summary>
internal sealed class DeviceUnavailableException(string value, string problem)
    : SettingException(Setting.Device, value, problem);
