namespace IdDisentangle.Imaging;

/// <summary>The image files of a folder, sorted by name, and the other files that were passed over.</summary>
internal sealed record ImageFolderListing(
    string Directory,
    IReadOnlyList<string> Images,
    IReadOnlyList<string> Skipped
);

internal static class ImageFolder
{
    /// <summary>
    /// Lists the files of <paramref name="directory"/> whose extension is an image format we decode
    /// (<see cref="ImageIO.Extensions"/>), in ordinal name order; hidden files and other files are counted as skipped.
    /// </summary>
    public static ImageFolderListing List(string directory, bool recursive = false)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{directory}: no such folder");
        var option = recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly;
        var images = new List<string>();
        var skipped = new List<string>();
        foreach (var f in System.IO.Directory.EnumerateFiles(directory, "*", option).Order(StringComparer.Ordinal))
        {
            if (ImageIO.HasImageExtension(f) && !Path.GetFileName(f).StartsWith('.'))
                images.Add(f);
            else
                skipped.Add(f);
        }
        return new ImageFolderListing(directory, images, skipped);
    }
}
