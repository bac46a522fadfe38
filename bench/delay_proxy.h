// A TCP proxy on 127.0.0.1 that holds every byte `one_way` before passing it on, each way: a link
// with a round trip `2 * one_way` longer, bandwidth unchanged (bytes read together leave together,
// and a later read never waits for an earlier one's delay twice). For benchmarks only: this
// machine's kernel has no netem (CONFIG_NET_SCH_NETEM is not set), which would do it in the kernel.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace assay::bench {

class DelayProxy {
 public:
  // Forwards connections on a port of its own to 127.0.0.1:`target_port`.
  DelayProxy(int target_port, absl::Duration one_way) : target_port_(target_port), one_way_(one_way) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = Loopback(0);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~DelayProxy() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    for (auto& link : links_) link->Stop();
    links_.clear();
  }
  int port() const { return port_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  // One direction of one connection: a reader queues what arrives with its due time, a sender
  // writes it once due.
  class Pipe {
   public:
    Pipe(int from, int to, absl::Duration delay) : from_(from), to_(to), delay_(delay) {
      reader_ = std::thread([this] { Read(); });
      sender_ = std::thread([this] { Send(); });
    }
    void Join() {
      reader_.join();
      sender_.join();
    }

   private:
    void Read() {
      std::vector<char> buffer(256 << 10);
      for (;;) {
        const ssize_t n = ::read(from_, buffer.data(), buffer.size());
        absl::MutexLock lock(&mu_);
        if (n <= 0) {
          done_ = true;
          return;
        }
        queue_.emplace_back(absl::Now() + delay_, std::string(buffer.data(), static_cast<size_t>(n)));
      }
    }
    void Send() {
      for (;;) {
        std::pair<absl::Time, std::string> next;
        {
          absl::MutexLock lock(&mu_);
          auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ || !queue_.empty(); };
          mu_.Await(absl::Condition(&ready));
          if (queue_.empty()) break;
          next = std::move(queue_.front());
          queue_.pop_front();
        }
        absl::SleepFor(next.first - absl::Now());  // the emulated link's delay itself
        for (size_t sent = 0; sent < next.second.size();) {
          const ssize_t n = ::send(to_, next.second.data() + sent, next.second.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) {
            ::shutdown(from_, SHUT_RDWR);
            return;
          }
          sent += static_cast<size_t>(n);
        }
      }
      ::shutdown(to_, SHUT_WR);
    }

    const int from_, to_;
    const absl::Duration delay_;
    absl::Mutex mu_;
    std::deque<std::pair<absl::Time, std::string>> queue_ ABSL_GUARDED_BY(mu_);
    bool done_ ABSL_GUARDED_BY(mu_) = false;
    std::thread reader_, sender_;
  };

  struct Link {
    int client, server;
    std::unique_ptr<Pipe> up, down;
    void Stop() {
      ::shutdown(client, SHUT_RDWR);
      ::shutdown(server, SHUT_RDWR);
      up->Join();
      down->Join();
      ::close(client);
      ::close(server);
    }
  };

  void Accept() {
    for (;;) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      if (stopping_) {
        ::close(client);
        return;
      }
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = Loopback(target_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto link = std::make_unique<Link>();
      link->client = client;
      link->server = server;
      link->up = std::make_unique<Pipe>(client, server, one_way_);
      link->down = std::make_unique<Pipe>(server, client, one_way_);
      links_.push_back(std::move(link));
    }
  }

  const int target_port_;
  const absl::Duration one_way_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::unique_ptr<Link>> links_;  // the acceptor's until it ends
};

}  // namespace assay::bench
