using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using IdDisentangle.IO;
using IdDisentangle.Runtime;
using SharpCompress.Compressors;
using SharpCompress.Compressors.BZip2;
using SharpCompress.Compressors.Xz;

namespace IdDisentangle.Weights;

/// <summary>A Debian package that ships a pretrained model file, pinned by the package's and the file's
/// SHA-256.</summary>
/// <param name="Name">Package name.</param>
/// <param name="Version">Exact version.</param>
/// <param name="PoolPath">The .deb's path below a Debian mirror's root.</param>
/// <param name="DebSha256">SHA-256 of the .deb, as the archive's Packages index lists it.</param>
/// <param name="Member">The file's path inside the package (and where an installed copy lives).</param>
/// <param name="MemberSha256">SHA-256 of that file.</param>
/// <param name="StorePath">Where the file goes in the model store.</param>
internal sealed record DebianWeightFile(
    string Name,
    string Version,
    string PoolPath,
    string DebSha256,
    string Member,
    string MemberSha256,
    string StorePath
)
{
    public string DebFileName => Path.GetFileName(PoolPath);
    public string Spec => $"{Name} {Version}";
}

/// <summary>
/// Model files that Debian packages (dlib's 68-point face landmark model is in <c>libdlib-data</c>). A copy
/// installed by the system's package manager is used when its checksum matches; otherwise the .deb is taken from a
/// folder or downloaded from a Debian mirror (<see cref="MirrorVariable"/>, default deb.debian.org), checked, and
/// the one file is unpacked from its data archive (ar, then tar.xz).
/// </summary>
internal static class DebianWeights
{
    public const string MirrorVariable = "IDDIS_DEBIAN_MIRROR";
    public const string DefaultMirror = "https://deb.debian.org/debian";

    public static readonly DebianWeightFile DlibLandmarks68 = new(
        "libdlib-data",
        "19.24+dfsg-1",
        "pool/main/d/dlib/libdlib-data_19.24+dfsg-1_all.deb",
        "12dda15b1323ca7772bd9cae31f2b839485b36f51b1fe51707a272b94b71c106",
        "usr/share/dlib/shape_predictor_68_face_landmarks.dat",
        "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        ModelStore.Find("dlib-landmarks68").RelativePath
    );

    public static readonly IReadOnlyList<DebianWeightFile> Files = [DlibLandmarks68];

    public static bool IsPresent(ModelStore store, DebianWeightFile file) =>
        File.Exists(Path.Combine(store.Root, file.StorePath));

    public static string ManualInstructions(ModelStore store, DebianWeightFile file) =>
        $"run 'iddis models fetch' (it downloads {file.DebFileName} from {DefaultMirror}, or the mirror in ${MirrorVariable}), "
        + $"or install the Debian package {file.Name}, or download {DefaultMirror}/{file.PoolPath} elsewhere and run 'iddis models fetch --from DIR', "
        + $"or put {Path.GetFileName(file.Member)} or its .bz2 (as dlib.net serves it) in a folder and run 'iddis models fetch --from DIR'";

    /// <summary>
    /// Makes the file present in the store and returns its path. <paramref name="fromDir"/> may hold the .deb, or
    /// the file itself, plain or .bz2-compressed (as dlib.net serves its models): a loose copy whose checksum is not
    /// the pinned one is accepted only when <paramref name="validate"/> (which throws on a bad file) accepts it.
    /// </summary>
    public static string Fetch(
        ModelStore store,
        DebianWeightFile file,
        string? fromDir = null,
        Action<string>? log = null,
        CancellationToken cancellation = default,
        Action<string>? validate = null,
        IProgress<DownloadProgress>? progress = null
    )
    {
        string target = Path.Combine(store.Root, file.StorePath);
        if (IsPresent(store, file))
            return target;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);

        string installed = "/" + file.Member;
        if (!OperatingSystem.IsWindows() && File.Exists(installed) && FileHash.Sha256(installed) == file.MemberSha256)
        {
            AtomicFile.Write(
                target,
                s =>
                {
                    using var src = File.OpenRead(installed);
                    src.CopyTo(s);
                }
            );
            log?.Invoke($"{file.Spec}: copied the installed {installed}");
            return target;
        }

        string tmp = Path.Combine(store.Root, ".download", Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(tmp);
        try
        {
            string deb;
            if (fromDir is not null)
            {
                deb = Path.Combine(fromDir, file.DebFileName);
                string loose = Path.Combine(fromDir, Path.GetFileName(file.Member));
                if (!File.Exists(deb) && (File.Exists(loose) || File.Exists(loose + ".bz2")))
                    return FromLooseCopy(file, File.Exists(loose) ? loose : loose + ".bz2", target, tmp, validate, log);
                if (!File.Exists(deb))
                    throw new SettingException(
                        Setting.PackageFolder,
                        fromDir,
                        $"has neither {file.DebFileName} nor {Path.GetFileName(file.Member)}(.bz2)"
                    );
            }
            else
            {
                string mirror = (
                    Environment.GetEnvironmentVariable(MirrorVariable) is { Length: > 0 } m ? m : DefaultMirror
                ).TrimEnd('/');
                string url = $"{mirror}/{file.PoolPath}";
                log?.Invoke($"downloading {url}");
                deb = Path.Combine(store.Root, ".download", file.DebFileName);
                Download(url, deb, progress, cancellation);
            }
            string actual = FileHash.Sha256(deb);
            if (actual != file.DebSha256)
            {
                if (fromDir is null)
                    File.Delete(deb);
                throw new InvalidDataException(
                    $"{deb}: SHA-256 {actual} does not match the pinned {file.DebSha256} of {file.Spec}"
                );
            }
            ExtractMember(deb, file.Member, target, cancellation);
            string member = FileHash.Sha256(target);
            if (member != file.MemberSha256)
            {
                File.Delete(target);
                throw new InvalidDataException(
                    $"{deb}: {file.Member} has SHA-256 {member}, expected {file.MemberSha256}"
                );
            }
            log?.Invoke($"{file.Spec}: {file.Member} in {target}");
            if (fromDir is null)
                File.Delete(deb);
            return target;
        }
        finally
        {
            try
            {
                Directory.Delete(tmp, recursive: true);
            }
            catch (IOException) { }
        }
    }

    static string FromLooseCopy(
        DebianWeightFile file,
        string source,
        string target,
        string tmp,
        Action<string>? validate,
        Action<string>? log
    )
    {
        string staged = Path.Combine(tmp, Path.GetFileName(file.Member));
        using (var input = File.OpenRead(source))
        using (var output = File.Create(staged))
        {
            if (source.EndsWith(".bz2", StringComparison.OrdinalIgnoreCase))
            {
                try
                {
                    using var bz = BZip2Stream.Create(
                        input,
                        CompressionMode.Decompress,
                        decompressConcatenated: true,
                        leaveOpen: true,
                        tolerateTruncatedStream: false
                    );
                    bz.CopyTo(output);
                }
                catch (Exception e) when (e is not (IOException or InvalidDataException))
                {
                    throw new InvalidDataException($"{source}: not a readable bzip2 file ({e.Message})", e);
                }
            }
            else
                input.CopyTo(output);
        }
        if (FileHash.Sha256(staged) != file.MemberSha256)
        {
            if (validate is null)
                throw new InvalidDataException(
                    $"{source}: SHA-256 differs from the pinned {file.MemberSha256} of {file.Spec}'s {Path.GetFileName(file.Member)}"
                );
            try
            {
                validate(staged);
            }
            catch (Exception e) when (e is InvalidDataException or ArgumentException)
            {
                throw new InvalidDataException($"{source}: {e.Message.Replace(staged, "the decompressed file")}", e);
            }
            log?.Invoke($"{source}: not byte-identical to {file.Spec}'s copy, but a valid model; using it");
        }
        AtomicFile.Write(
            target,
            s =>
            {
                using var src = File.OpenRead(staged);
                src.CopyTo(s);
            }
        );
        log?.Invoke($"{source} -> {target}");
        return target;
    }

    static void Download(
        string url,
        string destination,
        IProgress<DownloadProgress>? progress,
        CancellationToken cancellation
    )
    {
        try
        {
            HttpDownload.Download(url, destination, progress, cancellation: cancellation);
        }
        catch (DownloadException e)
        {
            throw new DownloadException(
                $"{e.Message}; set ${MirrorVariable} to another Debian mirror or use 'iddis models fetch --from DIR'",
                e
            );
        }
    }

    /// <summary>Writes one file of a .deb's data.tar.xz to <paramref name="target"/> (atomically).</summary>
    public static void ExtractMember(string deb, string member, string target, CancellationToken cancellation = default)
    {
        try
        {
            ExtractMemberUnchecked(deb, member, target, cancellation);
        }
        // The xz and tar decoders report damage with their own exceptions, none naming the file; a failure to write
        // the target (a full disk) is an IOException of its own and passes as it is.
        catch (Exception e)
            when (e
                    is EndOfStreamException
                        or FormatException
                        or ArgumentException
                        or IndexOutOfRangeException
                        or OverflowException
                        or NotSupportedException
                        or InvalidOperationException
                || e.GetType().Namespace?.StartsWith("SharpCompress", StringComparison.Ordinal) == true
                || (e is InvalidDataException && !e.Message.StartsWith(deb, StringComparison.Ordinal))
            )
        {
            throw new InvalidDataException($"{deb}: a damaged Debian package ({e.GetType().Name}: {e.Message})", e);
        }
    }

    static void ExtractMemberUnchecked(string deb, string member, string target, CancellationToken cancellation)
    {
        using var fs = File.OpenRead(deb);
        using var data = OpenArMember(fs, "data.tar.xz", deb);
        using var xz = new XZStream(data);
        using var tar = new TarReader(xz);
        while (tar.GetNextEntry() is { } entry)
        {
            cancellation.ThrowIfCancellationRequested();
            string name = entry.Name.Replace('\\', '/');
            if (name.StartsWith("./", StringComparison.Ordinal))
                name = name[2..];
            if (name != member || entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                continue;
            AtomicFile.Write(target, s => entry.DataStream?.CopyTo(s));
            return;
        }
        throw new InvalidDataException($"{deb}: the package has no {member}");
    }

    /// <summary>The bytes of one member of an ar archive (the container of a .deb).</summary>
    static Stream OpenArMember(Stream ar, string member, string source)
    {
        var magic = new byte[8];
        if (ar.ReadAtLeast(magic, 8, throwOnEndOfStream: false) < 8 || Encoding.ASCII.GetString(magic) != "!<arch>\n")
            throw new InvalidDataException($"{source}: not a Debian package (no ar signature)");
        var header = new byte[60];
        while (ar.Read(header, 0, 1) == 1)
        {
            if (ar.ReadAtLeast(header.AsSpan(1), 59, throwOnEndOfStream: false) < 59)
                throw new InvalidDataException($"{source}: truncated ar member header");
            string name = Encoding.ASCII.GetString(header, 0, 16).TrimEnd(' ', '/');
            if (!long.TryParse(Encoding.ASCII.GetString(header, 48, 10).Trim(), out long size) || size < 0)
                throw new InvalidDataException($"{source}: damaged ar member header");
            if (name == member)
                return new SubStream(ar, ar.Position, size);
            ar.Seek(size + (size & 1), SeekOrigin.Current);
        }
        throw new InvalidDataException($"{source}: the package has no {member}");
    }

    /// <summary>A read-only window on a seekable stream.</summary>
    sealed class SubStream(Stream inner, long start, long length) : Stream
    {
        long _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position
        {
            get => _pos;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_pos >= length)
                return 0;
            inner.Position = start + _pos;
            int n = inner.Read(buffer, offset, (int)Math.Min(count, length - _pos));
            _pos += n;
            return n;
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
