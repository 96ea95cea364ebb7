namespace IdDisentangle.IO;

/// <summary>
/// Writes files so that a reader never sees a half-written one: the content goes to a temporary file in the
/// same folder, which then replaces the target in one rename. An interrupted write leaves the old file intact.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        string tmp = Path.Combine(
            dir ?? ".",
            $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp"
        );
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            // A disk error names the temporary file, if anything: say which file could not be written.
            if (e.GetType() == typeof(IOException) && !e.Message.Contains(full, StringComparison.Ordinal))
                throw new IOException($"{full}: could not be written ({e.Message}); an earlier version is kept", e);
            throw;
        }
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    public static void WriteAllText(string path, string text) =>
        Write(
            path,
            s =>
            {
                using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true);
                w.Write(text);
            }
        );

    /// <summary>
    /// Makes the complete folder <paramref name="fresh"/> the new <paramref name="final"/>: the old one is moved aside
    /// first and deleted only after the rename, so an interruption leaves either the old folder or the new one.
    /// </summary>
    public static void ReplaceDirectory(string fresh, string final)
    {
        string old = final + ".old";
        if (Directory.Exists(old))
            Directory.Delete(old, true);
        if (Directory.Exists(final))
            Directory.Move(final, old);
        Directory.Move(fresh, final);
        if (Directory.Exists(old))
            Directory.Delete(old, true);
    }
}
