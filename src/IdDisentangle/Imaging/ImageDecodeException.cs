namespace IdDisentangle.Imaging;

/// <summary>Why an image file could not be used.</summary>
internal enum ImageProblem
{
    Missing,
    Unreadable,
    Truncated,
    TooLarge,
    Unsupported,
}

/// <summary>An image file that could not be decoded; <see cref="Exception.Message"/> starts with the file's
/// path.</summary>
internal sealed class ImageDecodeException(string path, ImageProblem problem, string reason)
    : IOException($"{path}: {reason}")
{
    public string FilePath { get; } = path;
    public ImageProblem Problem { get; } = problem;
}
