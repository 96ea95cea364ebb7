using System.Security.Cryptography;

namespace IdDisentangle.IO;

/// <summary>Content hashes of files, as the pinned values of downloads and run records are written.</summary>
internal static class FileHash
{
    /// <summary>The file's SHA-256, lowercase hexadecimal.</summary>
    public static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }
}
