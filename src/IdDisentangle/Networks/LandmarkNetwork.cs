using IdDisentangle.Faces;

namespace IdDisentangle.Networks;

/// <summary>The 68-point landmark models: face-api.js's net (the landmark loss's) and dlib's shape predictor.</summary>
internal sealed class LandmarkNetwork
{
    /// <summary>face-api.js's landmark net (MIT): what L_lnd uses; places alignment about 2 px less
    /// precisely.</summary>
    public static readonly LandmarkNetwork FaceApi = new("faceapi", AlignmentLandmarks.FaceApi, ["face-api"]);

    /// <summary>dlib's shape predictor, the model FFHQ was aligned with (non-commercial license).</summary>
    public static readonly LandmarkNetwork Dlib = new("dlib", AlignmentLandmarks.Dlib, []);

    public static IReadOnlyList<LandmarkNetwork> All { get; } = [FaceApi, Dlib];

    readonly string[] _aliases;

    LandmarkNetwork(string name, AlignmentLandmarks alignment, string[] aliases)
    {
        Name = name;
        Alignment = alignment;
        _aliases = aliases;
    }

    public string Name { get; }

    /// <summary>The alignment these landmarks place.</summary>
    public AlignmentLandmarks Alignment { get; }

    public override string ToString() => Name;

    /// <summary>The entry named <paramref name="name"/>; an unknown name is an error listing the choices.</summary>
    public static LandmarkNetwork Parse(string name) =>
        All.FirstOrDefault(n =>
            string.Equals(n.Name, name, StringComparison.OrdinalIgnoreCase)
            || n._aliases.Contains(name, StringComparer.OrdinalIgnoreCase)
        )
        ?? throw new NetworkChoiceException(
            $"landmark model '{name}': use {string.Join(" or ", All.Select(n => n.Name))}",
            All.Select(n => n.Name).ToList()
        );
}
