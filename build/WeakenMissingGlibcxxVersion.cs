#nullable enable
// Compiled by MSBuild's RoslynCodeTaskFactory (see Directory.Build.targets); not part of any project.
//
// Why: TorchSharp 0.107's libLibTorchSharp.so is built with GCC 13 and records a dependency on the
// version GLIBCXX_3.4.32, which the libstdc++ of Debian 12 / Ubuntu 22.04 (GCC 12) does not define, so
// dlopen fails with "version `GLIBCXX_3.4.32' not found". The only symbol of that version it references is
// std::ios_base_library_init, which no relocation uses. Marking that one version requirement
// VER_FLG_WEAK tells the dynamic loader a missing version is not fatal. We patch only the copies in a
// build/publish output folder (never the NuGet cache), only when the host libstdc++ lacks the version,
// and only once (an already weak entry is left alone).
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenMissingGlibcxxVersion : Task
{
    const string Version = "GLIBCXX_3.4.32";
    const uint ShtGnuVerdef = 0x6ffffffd, ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    public override bool Execute()
    {
        if (Files.Length == 0) return true;
        string? hostLib = FindHostLibStdCxx();
        if (hostLib == null)
        {
            Log.LogMessage(MessageImportance.Normal, "libstdc++.so.6 not found on this host; LibTorchSharp left unpatched.");
            return true;
        }
        if (DefinesVersion(File.ReadAllBytes(hostLib), Version))
        {
            Log.LogMessage(MessageImportance.Low, $"{hostLib} defines {Version}; LibTorchSharp needs no patch.");
            return true;
        }
        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            if (!File.Exists(path)) continue;
            byte[] elf = File.ReadAllBytes(path);
            int flagsOffset = FindVernauxFlagsOffset(elf, Version);
            if (flagsOffset < 0) continue;
            ushort flags = BitConverter.ToUInt16(elf, flagsOffset);
            if ((flags & VerFlgWeak) != 0) continue;
            BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, flagsOffset);
            // Write beside, then replace: never write through a hard link or symlink into the package cache.
            string tmp = path + ".weak-tmp";
            File.WriteAllBytes(tmp, elf);
            File.Delete(path);
            File.Move(tmp, path);
            Log.LogMessage(MessageImportance.High, $"{path}: marked {Version} weak (host libstdc++ {hostLib} lacks it).");
        }
        return true;
    }

    static string? FindHostLibStdCxx()
    {
        var dirs = new List<string>();
        string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
        dirs.AddRange(new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                              "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib" });
        foreach (var d in dirs)
        {
            string p = Path.Combine(d, "libstdc++.so.6");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    struct Section { public uint Type; public long Offset; public long Size; public uint Link; public uint Info; }

    static List<Section> Sections(byte[] e)
    {
        var list = new List<Section>();
        if (e.Length < 64 || e[0] != 0x7f || e[1] != (byte)'E' || e[2] != (byte)'L' || e[3] != (byte)'F' || e[4] != 2 || e[5] != 1)
            return list; // only ELF64 little-endian is handled
        long shoff = BitConverter.ToInt64(e, 0x28);
        int shentsize = BitConverter.ToUInt16(e, 0x3A), shnum = BitConverter.ToUInt16(e, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            long o = shoff + (long)i * shentsize;
            if (o + 64 > e.Length) break;
            list.Add(new Section
            {
                Type = BitConverter.ToUInt32(e, (int)o + 4),
                Offset = BitConverter.ToInt64(e, (int)o + 24),
                Size = BitConverter.ToInt64(e, (int)o + 32),
                Link = BitConverter.ToUInt32(e, (int)o + 40),
                Info = BitConverter.ToUInt32(e, (int)o + 44),
            });
        }
        return list;
    }

    static string CString(byte[] e, long offset)
    {
        int end = (int)offset;
        while (end < e.Length && e[end] != 0) end++;
        return Encoding.ASCII.GetString(e, (int)offset, end - (int)offset);
    }

    static bool DefinesVersion(byte[] e, string version)
    {
        var secs = Sections(e);
        foreach (var s in secs)
        {
            if (s.Type != ShtGnuVerdef) continue;
            long strtab = secs[(int)s.Link].Offset, o = s.Offset;
            for (uint i = 0; i < s.Info; i++)
            {
                uint aux = BitConverter.ToUInt32(e, (int)o + 12), next = BitConverter.ToUInt32(e, (int)o + 16);
                uint name = BitConverter.ToUInt32(e, (int)(o + aux));
                if (CString(e, strtab + name) == version) return true;
                if (next == 0) break;
                o += next;
            }
        }
        return false;
    }

    static int FindVernauxFlagsOffset(byte[] e, string version)
    {
        var secs = Sections(e);
        foreach (var s in secs)
        {
            if (s.Type != ShtGnuVerneed) continue;
            long strtab = secs[(int)s.Link].Offset, o = s.Offset;
            for (uint i = 0; i < s.Info; i++)
            {
                int cnt = BitConverter.ToUInt16(e, (int)o + 2);
                uint aux = BitConverter.ToUInt32(e, (int)o + 8), next = BitConverter.ToUInt32(e, (int)o + 12);
                long a = o + aux;
                for (int j = 0; j < cnt; j++)
                {
                    uint name = BitConverter.ToUInt32(e, (int)a + 8), anext = BitConverter.ToUInt32(e, (int)a + 12);
                    if (CString(e, strtab + name) == version) return (int)a + 4;
                    if (anext == 0) break;
                    a += anext;
                }
                if (next == 0) break;
                o += next;
            }
        }
        return -1;
    }
}
